"""Bounds on hostile input: bytes, nesting depth, decompression ratio, members, time.

Exceeding a limit is never a silent pass: the scanner turns it into a finding (fail closed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

from tutela.core.errors import ConfigError, ResourceLimitExceeded


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanLimits:
    """Per-file bounds (a dataclass, not a pydantic model: the scan path stays free of pydantic)."""

    max_depth: int = 6  # containers nested deeper than this are not opened (1..32)
    max_expanded_bytes: int = 8 << 30  # total bytes decompressed per file (>= 1 MiB)
    max_ratio: float = 250.0  # decompressed/compressed ratio above which a member is a bomb (>= 2)
    ratio_floor_bytes: int = 16 << 20  # outputs smaller than this are never judged by ratio
    max_members: int = 100_000  # members per archive
    max_seconds: float = 120.0  # wall-clock budget per top-level file
    max_stack: int = 5_000_000  # pickle machine stack and memo entries (>= 1000)
    max_header_bytes: int = 100 << 20  # safetensors/GGUF/JSON headers larger than this are refused

    def __post_init__(self) -> None:
        lower = {"max_depth": 1, "max_expanded_bytes": 1 << 20, "max_ratio": 2.0, "max_members": 1, "max_stack": 1000}
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ConfigError(f"scan limit {f.name}: a number is required, not {value!r}")
            if value < lower.get(f.name, 0) or (f.name == "max_seconds" and value <= 0):
                raise ConfigError(f"scan limit {f.name}={value!r} is below its minimum")
        if self.max_depth > 32:
            raise ConfigError(f"scan limit max_depth={self.max_depth} is above its maximum of 32")


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
