"""The posture pillar's subject: an artifact, i.e. bytes with a logical path, never a live object.

An `Artifact` is a window [start, end) over a buffer (bytes or a read-only mmap). Members of
containers are child artifacts: a stored zip member is a window over its parent's buffer (no
copy); a decompressed member owns new bytes. `member` is the chain of names inside `path`
("model.zip!archive/data.pkl"), `depth` the nesting level.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Union

Buffer = Union[bytes, bytearray, mmap.mmap]  # noqa: UP007 - runtime alias


@dataclass(frozen=True, slots=True)
class Artifact:
    data: Buffer
    path: str
    member: str = ""
    start: int = 0
    end: int = -1
    depth: int = 0

    def __post_init__(self) -> None:
        if self.end < 0:
            object.__setattr__(self, "end", len(self.data))
        if not 0 <= self.start <= self.end <= len(self.data):
            raise ValueError(f"invalid artifact window [{self.start}, {self.end}) of {len(self.data)} bytes")

    @classmethod
    def from_bytes(cls, data: bytes, path: str = "<bytes>") -> Artifact:
        return cls(data=data, path=path)

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def name(self) -> str:
        """The innermost file name (member if any, else path), for extension checks."""
        leaf = self.member.rsplit("!", 1)[-1] if self.member else self.path
        return leaf.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        name = self.name.lower()
        return name[name.rfind(".") :] if "." in name else ""

    def view(self) -> memoryview:
        return memoryview(self.data)[self.start : self.end]

    def head(self, n: int) -> bytes:
        return bytes(self.data[self.start : min(self.end, self.start + n)])

    def tail(self, n: int) -> bytes:
        return bytes(self.data[max(self.start, self.end - n) : self.end])

    def tobytes(self) -> bytes:
        if self.start == 0 and self.end == len(self.data) and isinstance(self.data, bytes):
            return self.data
        return bytes(self.data[self.start : self.end])

    def child(self, name: str, data: Buffer | None = None, start: int = 0, end: int = -1) -> Artifact:
        """A member: a window over this buffer (data=None) or over new bytes."""
        member = f"{self.member}!{name}" if self.member else name
        if data is None:
            return Artifact(self.data, self.path, member, start, end, self.depth + 1)
        return Artifact(data, self.path, member, start, end, self.depth + 1)
