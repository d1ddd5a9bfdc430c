"""Bounds on hostile input: bytes, nesting depth, decompression ratio, members, time.

Exceeding a limit is never a silent pass: the scanner turns it into a finding (fail closed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from tutela.core.errors import ResourceLimitExceeded


class ScanLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_depth: int = Field(6, ge=1, le=32, description="containers nested deeper than this are not opened")
    max_expanded_bytes: int = Field(8 << 30, ge=1 << 20, description="total bytes decompressed per file")
    max_ratio: float = Field(250.0, ge=2.0, description="decompressed/compressed ratio above which a member is a bomb")
    ratio_floor_bytes: int = Field(16 << 20, description="outputs smaller than this are never judged by ratio")
    max_members: int = Field(100_000, ge=1, description="members per archive")
    max_seconds: float = Field(120.0, gt=0, description="wall-clock budget per top-level file")
    max_stack: int = Field(5_000_000, ge=1000, description="pickle machine stack and memo entries")
    max_header_bytes: int = Field(100 << 20, description="safetensors/GGUF/JSON headers larger than this are refused")


class Deadline:
    """A time budget checked by long loops. `check()` raises ResourceLimitExceeded when spent."""

    __slots__ = ("expires", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.expires:
            raise ResourceLimitExceeded(f"scan exceeded its time budget of {self.seconds:g} s")


@dataclass(slots=True)
class Budget:
    """What one top-level file may still consume: decompressed bytes and time."""

    limits: ScanLimits
    deadline: Deadline
    expanded: int = 0

    @classmethod
    def of(cls, limits: ScanLimits) -> Budget:
        return cls(limits, Deadline(limits.max_seconds))

    def take(self, nbytes: int) -> None:
        self.expanded += nbytes
        if self.expanded > self.limits.max_expanded_bytes:
            raise ResourceLimitExceeded(f"decompressed more than {self.limits.max_expanded_bytes} bytes from one file")

    def room(self) -> int:
        return max(0, self.limits.max_expanded_bytes - self.expanded)
