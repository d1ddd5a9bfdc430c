"""Many UDP datagrams per system call: recvmmsg(2) and sendmmsg(2) on Linux, through ctypes.

On this kind of machine a system call costs microseconds, as much as the sensor's whole hot path:
an event-loop datagram protocol pays one receive and one send per query, plus a callback and the
address objects. `BatchSocket` reads up to `slots` waiting datagrams in one call into buffers
allocated once, and sends the replies queued meanwhile in one call. Addresses stay raw
(`struct sockaddr` bytes as the kernel wrote them): a reply goes back to the same bytes, and only
a caller that needs the (host, port) tuple converts them (`address`).

Single datagrams go out with libc's sendto(2) through ctypes too: the calls keep the GIL (they
never block), where socket.sendto releases and takes it back around the call, and a background
thread that takes it meanwhile holds the event loop up for up to the switch interval.

Only non-blocking calls (MSG_DONTWAIT); nothing here waits. A datagram larger than a slot is cut
by the kernel: `receive` marks it (`truncated`) so the caller can refuse it. `available()` is
False where the calls are missing (not Linux, no libc): the caller then uses the event loop's
datagram protocol instead.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import socket
import struct
import sys
from typing import Any

_MSG_DONTWAIT = 0x40
_MSG_TRUNC = 0x20
_HDR = 64  # struct mmsghdr on 64-bit Linux: struct msghdr (56) + msg_len (4) + padding
_IOV = 16  # struct iovec
_NAME = 28  # room for a struct sockaddr_in6
# offsets in struct mmsghdr, in 4-byte units (the header viewed as unsigned ints)
_NAMELEN = 2
_FLAGS = 12
_LEN = 14
_ADDRESSES = 4096  # raw addresses remembered with their (host, port) tuple, each way


@functools.cache
def _libc_calls() -> tuple[Any, Any, Any] | None:
    """recvmmsg, sendmmsg and sendto from libc, or None. PyDLL keeps the GIL: the calls never block. No
    argtypes (converting five arguments per call cost 0.4-0.6 µs here): callers pass Python ints
    that fit a C int, None and ctypes.c_void_p pointers only."""
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        libc = ctypes.PyDLL(None, use_errno=True)
        recv, send, one = libc.recvmmsg, libc.sendmmsg, libc.sendto
    except (OSError, AttributeError):
        return None
    recv.restype = send.restype = ctypes.c_int
    one.restype = ctypes.c_ssize_t
    return recv, send, one


def available() -> bool:
    return _libc_calls() is not None


class _Ring:
    """`slots` message headers, each with one buffer of `size` bytes and room for an address."""

    def __init__(self, slots: int, size: int) -> None:
        self.slots = slots
        self.size = size
        self._hdr = (ctypes.c_char * (slots * _HDR))()
        self._iov = (ctypes.c_char * (slots * _IOV))()
        self._buf = (ctypes.c_char * (slots * size))()
        self._names = (ctypes.c_char * (slots * _NAME))()
        self.address = ctypes.addressof(self._hdr)
        self.pointer = ctypes.c_void_p(self.address)
        self.buf = memoryview(self._buf).cast("B")
        self.names = memoryview(self._names).cast("B")
        self.ints = memoryview(self._hdr).cast("B").cast("I")
        words = memoryview(self._hdr).cast("B").cast("Q")
        iov = memoryview(self._iov).cast("B").cast("Q")
        self.iov = iov
        buf, names, iovs = ctypes.addressof(self._buf), ctypes.addressof(self._names), ctypes.addressof(self._iov)
        for i in range(slots):
            iov[2 * i] = buf + i * size
            iov[2 * i + 1] = size
            words[8 * i] = names + i * _NAME  # msg_name
            self.ints[16 * i + _NAMELEN] = _NAME
            words[8 * i + 2] = iovs + i * _IOV  # msg_iov
            words[8 * i + 3] = 1  # msg_iovlen


class BatchSocket:
    """A bound, non-blocking UDP socket read and written in batches (see the module docstring)."""

    def __init__(self, sock: socket.socket, *, slots: int = 64, size: int = 4096) -> None:
        calls = _libc_calls()
        if calls is None:
            raise OSError("recvmmsg/sendmmsg are not available here")
        self._recvmmsg, self._sendmmsg, self._sendto = calls
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.family = sock.family
        self.slots = slots
        self._in = _Ring(slots, size)
        self._out = _Ring(slots, size)
        self._queued = 0
        self._filled = slots  # receive slots whose address length the kernel overwrote last time
        self.truncated = 0  # datagrams larger than a slot (cut by the kernel), refused
        self.send_errors = 0  # replies the kernel would not take (full buffer, bad address)
        self._sockaddrs: dict[Any, bytes] = {}  # (host, port) -> raw address, for sendto
        self._tuples: dict[bytes, tuple[Any, ...]] = {}  # raw address -> (host, port), for `address`

    def receive(self) -> list[tuple[bytes, bytes]]:
        """The datagrams waiting now, at most `slots`, as (data, raw address); [] when none.
        A datagram cut to the slot size comes back with data b"" (and counts in `truncated`)."""
        ring = self._in
        ints = ring.ints
        for i in range(self._filled):  # the kernel shortens msg_namelen to the address it wrote
            ints[16 * i + _NAMELEN] = _NAME
        got = self._recvmmsg(self.fd, ring.pointer, ring.slots, _MSG_DONTWAIT, None)
        if got <= 0:
            self._filled = 0
            return []
        self._filled = got
        buf, names, size = ring.buf, ring.names, ring.size
        out = []
        for i in range(got):
            at = 16 * i
            start = i * size
            if ints[at + _FLAGS] & _MSG_TRUNC:
                self.truncated += 1
                data = b""
            else:
                data = bytes(buf[start : start + ints[at + _LEN]])
            out.append((data, bytes(names[i * _NAME : i * _NAME + ints[at + _NAMELEN]])))
        return out

    def push(self, data: bytes, name: bytes) -> None:
        """Queue a reply to the raw address `name`; sent by `flush` (at once when the queue is full
        or the reply larger than a slot)."""
        ring = self._out
        size = len(data)
        if size > ring.size or len(name) > _NAME:
            self.send_one(data, name)
            return
        k = self._queued
        start = k * ring.size
        ring.buf[start : start + size] = data
        ring.iov[2 * k + 1] = size
        ring.names[k * _NAME : k * _NAME + len(name)] = name
        ring.ints[16 * k + _NAMELEN] = len(name)
        self._queued = k + 1
        if k + 1 == ring.slots:
            self.flush()

    def flush(self) -> None:
        """Send every queued reply; one the kernel refuses is counted and skipped."""
        ring = self._out
        queued, done = self._queued, 0
        self._queued = 0
        while done < queued:
            at = ring.pointer if not done else ctypes.c_void_p(ring.address + done * _HDR)
            sent = self._sendmmsg(self.fd, at, queued - done, 0)
            if sent > 0:
                done += sent
                continue
            if ctypes.get_errno() == errno.EINTR:
                continue
            self.send_errors += 1  # the first unsent one failed: skip it
            done += 1

    def send_one(self, data: bytes, name: bytes) -> None:
        """One datagram to a raw address now."""
        if self._sendto(self.fd, data, len(data), 0, name, len(name)) < 0:
            self.send_errors += 1

    def sendto(self, data: bytes, addr: Any) -> None:
        """One datagram to a (host, port) now (the replies off the batch: upstream answers, errors)."""
        name = self._sockaddrs.get(addr)
        if name is None:
            try:
                name = self._sockaddr(addr)
            except (OSError, ValueError, TypeError, IndexError, struct.error):
                self.send_errors += 1
                return
            if len(self._sockaddrs) >= _ADDRESSES:
                self._sockaddrs.clear()
            self._sockaddrs[addr] = name
        self.send_one(data, name)

    def _sockaddr(self, addr: Any) -> bytes:
        """The raw struct sockaddr of a (host, port[, flowinfo, scope_id]) tuple (`address` reversed)."""
        if self.family == socket.AF_INET6:
            flow, scope = (addr[2], addr[3]) if len(addr) >= 4 else (0, 0)
            return (struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", addr[1], flow)
                    + socket.inet_pton(socket.AF_INET6, addr[0]) + struct.pack("=I", scope))  # fmt: skip
        return (
            struct.pack("=H", socket.AF_INET)
            + struct.pack("!H", addr[1])
            + socket.inet_pton(socket.AF_INET, addr[0])
            + bytes(8)
        )

    def address(self, name: bytes) -> tuple[Any, ...]:
        """The (host, port) tuple of a raw address, as socket.recvfrom would give it (remembered)."""
        addr = self._tuples.get(name)
        if addr is None:
            if len(self._tuples) >= _ADDRESSES:
                self._tuples.clear()
            addr = self._tuples[name] = self._tuple(name)
        return addr

    def _tuple(self, name: bytes) -> tuple[Any, ...]:
        if self.family == socket.AF_INET6:
            host = socket.inet_ntop(socket.AF_INET6, name[8:24])
            return (host, int.from_bytes(name[2:4], "big"), int.from_bytes(name[4:8], "big"),
                    int.from_bytes(name[24:28], "little"))  # fmt: skip
        return (socket.inet_ntop(socket.AF_INET, name[4:8]), int.from_bytes(name[2:4], "big"))

    def close(self) -> None:
        self.sock.close()
