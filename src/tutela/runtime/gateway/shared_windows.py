"""Budget windows shared by the gateway's worker processes: a fixed-size table in a memory-mapped file.

With `--workers N` each process used to count a caller's requests, tokens and cost on its own, so a
caller got up to N times the limits. Worker 0 creates `<home>/run/gateway-budgets-<pid>.bin` before it
starts the others; every worker maps it and reads and updates a window under an exclusive `flock` (two
system calls, microseconds: the lock is held for one slot's read-modify-write). The table is an open
addressing hash of SLOTS fixed-size records keyed by a 16-byte BLAKE2b of (scope, who), so its size is
bounded whatever callers send: a full probe range reuses an expired window, else the oldest one.
Window starts are CLOCK_MONOTONIC seconds, the same in every process of the machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SLOTS = 1 << 15
PROBES = 32
_SLOT = struct.Struct("<16sddqqd")  # key, start, window_s, requests, tokens, cost
_EMPTY = bytes(16)


class Window:
    """One window's counters, as the budget logic reads and changes them."""

    __slots__ = ("cost", "requests", "start", "tokens")

    def __init__(self, start: float, requests: int = 0, tokens: int = 0, cost: float = 0.0) -> None:
        self.start = start
        self.requests = requests
        self.tokens = tokens
        self.cost = cost


def table_path(home: Path, leader_pid: int) -> Path:
    return home / "run" / f"gateway-budgets-{leader_pid}.bin"


def remove_stale(folder: Path) -> None:
    """Tables of gateways that are gone (killed before they could remove theirs)."""
    for table in folder.glob("gateway-budgets-*.bin"):
        try:
            os.kill(int(table.stem.rsplit("-", 1)[1]), 0)
        except ValueError:
            continue
        except ProcessLookupError:
            table.unlink(missing_ok=True)
        except PermissionError:
            continue  # alive, another user's


class SharedWindows:
    def __init__(self, path: Path, slots: int = SLOTS, *, owner: bool = False) -> None:
        """`owner`: worker 0, which starts the table empty (a file left by a process of the same pid before a
        reboot holds windows of another clock) and removes it at close; the others keep their mapping."""
        self.path = path
        self.slots = slots
        self.owner = owner
        path.parent.mkdir(parents=True, exist_ok=True)
        if owner:
            remove_stale(path.parent)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | (os.O_TRUNC if owner else 0), 0o600)
        size = slots * _SLOT.size
        with self._locked():  # the first process to get here sizes it (zeros: every slot empty)
            if os.fstat(self._fd).st_size < size:
                os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    def close(self) -> None:
        if self.owner:
            self.path.unlink(missing_ok=True)
        with contextlib.suppress(ValueError, OSError):
            self._map.close()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def hold(self, scope: str, who: str, now: float, window_s: float) -> Iterator[Window]:
        """The current window of (scope, who), locked for the block: changes to it are written back."""
        key = hashlib.blake2b(f"{scope}\0{who}".encode(), digest_size=16).digest()
        with self._locked():
            offset, fields = self._find(key, now)
            if fields is None or not 0 <= now - fields[1] < window_s:
                window = Window(now)
            else:
                window = Window(fields[1], fields[3], fields[4], fields[5])
            yield window
            _SLOT.pack_into(self._map, offset, key, window.start, window_s, window.requests, window.tokens, window.cost)

    def _find(self, key: bytes, now: float) -> tuple[int, tuple[Any, ...] | None]:
        """(offset of key's slot, its fields) or, when absent, (a free, expired or the oldest slot, None)."""
        home = int.from_bytes(key[:8], "little") % self.slots
        spare, spare_rank = -1, (2, 0.0)
        for i in range(PROBES):
            offset = ((home + i) % self.slots) * _SLOT.size
            fields = _SLOT.unpack_from(self._map, offset)
            if fields[0] == key:
                return offset, fields
            if fields[0] == _EMPTY:
                rank = (0, 0.0)
            elif now - fields[1] >= fields[2]:
                rank = (1, 0.0)  # expired: free to reuse
            else:
                rank = (2, fields[1])  # live: the oldest goes if nothing else is free
            if spare < 0 or rank < spare_rank:
                spare, spare_rank = offset, rank
            if fields[0] == _EMPTY:
                break  # the key would have been placed here or before
        return spare, None
