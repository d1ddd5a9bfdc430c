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

`DatagramQueue` is the sending half alone, for any socket (the sensor's connected upstream sockets
too): datagrams queued while a batch is worked on leave in one sendmmsg(2) call. Each send on
loopback also delivers the datagram and wakes its reader inside the call (the kernel's share of a
first sighting's cost, measured with perf), and one call wakes it once for the whole batch.

Only non-blocking calls (MSG_DONTWAIT); nothing here waits. A datagram larger than a slot is cut
by the kernel: `receive` marks it (`truncated`) so the caller can refuse it. `available()` is
False where the calls are missing (not Linux, no libc): the caller then uses the event loop's
datagram protocol instead.

`serve` is the sensor's whole hot loop for one batch: read, answer the answer-cache hits the hot
path may serve (tutela.dns.hotpath), send them, return the rest. It runs in C when the extension
tutela._native.udpfast was built (no ctypes, no Python object per answered datagram), else in
Python (`_serve_python`, the reference twin); TUTELA_PURE_PYTHON=1 forces Python.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

from tutela import _native
from tutela.dns import hotpath

_MSG_DONTWAIT = 0x40
_MSG_TRUNC = 0x20
_HDR = 64  # struct mmsghdr on 64-bit Linux: struct msghdr (56) + msg_len (4) + padding
_IOV = 16  # struct iovec
_NAME = 28  # room for a struct sockaddr_in6
# offsets in struct mmsghdr, in 4-byte units (the header viewed as unsigned ints)
_NAMELEN = 2
_FLAGS = 12
_LEN = 14
SLOT_SIZE = 4096  # bytes per datagram slot (a longer datagram is cut on receive, sent alone on send)
_ADDRESSES = 4096  # raw addresses remembered with their (host, port) tuple, each way
_SMALL_BATCH = 2  # batches up to this size answer with one sendto each (sendmmsg through ctypes costs more)
_udpfast = _native.load("udpfast")  # chosen at import: C when built, else the Python twin


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


class DatagramQueue:
    """Datagrams for one socket, queued (`push`) and sent many per sendmmsg(2) call (`flush`).
    `name` is a raw struct sockaddr, or b"" on a connected socket. A flush of a single datagram,
    and a datagram larger than a slot, go out one by one through `single` (default: libc's sendto):
    at low rates a loop iteration queues one datagram, and one sendto costs less than the copy into
    the ring plus a sendmmsg through ctypes."""

    def __init__(
        self, fd: int, *, slots: int = 64, size: int = SLOT_SIZE, single: Callable[[bytes, bytes], None] | None = None
    ) -> None:
        calls = _libc_calls()
        if calls is None:
            raise OSError("recvmmsg/sendmmsg are not available here")
        _, self._sendmmsg, self._sendto = calls
        self.fd = fd
        self._ring = _Ring(slots, size)
        self._pending: list[tuple[bytes, bytes]] = []
        self._single = single or self.send_one
        self.failed = 0  # datagrams the kernel would not take (full buffer, bad address, ICMP error)

    @property
    def queued(self) -> int:
        return len(self._pending)

    def push(self, data: bytes, name: bytes = b"") -> None:
        """Queue one datagram; sent by `flush` (at once when it fills the queue)."""
        pending = self._pending
        pending.append((data, name))
        if len(pending) >= self._ring.slots:
            self.flush()

    def flush(self) -> None:
        """Send every queued datagram; one the kernel refuses is counted (`failed`) and skipped."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if len(pending) == 1:
            self._single(*pending[0])
            return
        ring = self._ring
        buf, iov, names, ints, slot = ring.buf, ring.iov, ring.names, ring.ints, ring.size
        queued = 0
        for data, name in pending:
            size = len(data)
            if size > slot or len(name) > _NAME:
                self._single(data, name)
                continue
            start = queued * slot
            buf[start : start + size] = data
            iov[2 * queued + 1] = size
            names[queued * _NAME : queued * _NAME + len(name)] = name
            ints[16 * queued + _NAMELEN] = len(name)
            queued += 1
        done = 0
        while done < queued:
            at = ring.pointer if not done else ctypes.c_void_p(ring.address + done * _HDR)
            sent = self._sendmmsg(self.fd, at, queued - done, 0)
            if sent > 0:
                done += sent
                continue
            if ctypes.get_errno() == errno.EINTR:
                continue
            self.failed += 1  # the first unsent one failed: skip it
            done += 1

    def drop(self) -> int:
        """Forget what is queued (its socket is gone); returns how many datagrams that was."""
        dropped = len(self._pending)
        self._pending = []
        return dropped

    def take_failed(self) -> int:
        """How many datagrams were refused since the last call (for an owner that counts them itself)."""
        failed, self.failed = self.failed, 0
        return failed

    def send_one(self, data: bytes, name: bytes = b"") -> None:
        """One datagram now (libc's sendto: the GIL kept, see the module docstring)."""
        while self._sendto(self.fd, data, len(data), _MSG_DONTWAIT, name or None, len(name)) < 0:
            if ctypes.get_errno() != errno.EINTR:
                self.failed += 1
                return


class BatchSocket:
    """A bound, non-blocking UDP socket read and written in batches (see the module docstring)."""

    def __init__(self, sock: socket.socket, *, slots: int = 64, size: int = SLOT_SIZE, native: Any = _udpfast) -> None:
        """`native`: the compiled udpfast module that runs `serve` and `send_one`, or None for the
        Python twins (the default: whatever was chosen at import)."""
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
        self._filled = slots  # receive slots whose address length the kernel overwrote last time
        self._truncated = 0  # datagrams larger than a slot (cut by the kernel), refused
        self._send_errors = 0  # replies the kernel would not take (full buffer, bad address)
        self._receive_errors = 0  # failed reads other than "nothing waiting"
        self._hot_errors = 0  # Python errors while answering on the hot path (the datagram went the slow way)
        self._sockaddrs: dict[Any, bytes] = {}  # (host, port) -> raw address, for sendto
        self._tuples: dict[bytes, tuple[Any, ...]] = {}  # raw address -> (host, port), for `address`
        self._hot = None if native is None else native.HotSocket(self.fd, self.family == socket.AF_INET6, slots, size)
        self.native = self._hot is not None
        self.serve: Callable[..., Any] = self._serve_python if self._hot is None else self._hot.serve
        self.send_one: Callable[[bytes, bytes], None] = self._send_one_python if self._hot is None else self._hot.send
        self._out = DatagramQueue(self.fd, slots=slots, size=size, single=self.send_one)

    def _count(self, name: str) -> int:
        return int(getattr(self, "_" + name) + (getattr(self._hot, name) if self._hot is not None else 0))

    # counters of both halves (this object's Python methods and the compiled HotSocket)
    truncated = property(lambda self: self._count("truncated"))
    send_errors = property(lambda self: self._count("send_errors") + self._out.failed)
    receive_errors = property(lambda self: self._count("receive_errors"))
    hot_errors = property(lambda self: self._count("hot_errors"))

    def _serve_python(
        self, entries: dict[bytes, Any], clients: Any, served: list[Any], monotonic: Callable[[], float], aged: Any
    ) -> tuple[bytes, list[tuple[bytes, bytes]], float, int] | None:
        """One batch of the hot loop (the twin of udpfast.HotSocket.serve): the datagrams waiting
        now, the hot-path answers among them sent, (their rcodes, the other datagrams as (data, raw
        address), the time they were read, how many were read); None when none waited. `aged` is
        the C path's fallback for stale TTLs (AnswerCache.body, which hotpath uses too)."""
        got = self.receive()
        if not got:
            return None
        now = monotonic()
        send = self.push if len(got) > _SMALL_BATCH else self.send_one
        rcodes, rest, errors = hotpath.answer_hot(got, send, self.address, now, entries, clients, served)
        self._hot_errors += errors
        self.flush()
        return rcodes, rest, now, len(got)

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
            if got < 0 and ctypes.get_errno() not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                self._receive_errors += 1
            return []
        self._filled = got
        buf, names, size = ring.buf, ring.names, ring.size
        out = []
        for i in range(got):
            at = 16 * i
            start = i * size
            if ints[at + _FLAGS] & _MSG_TRUNC:
                self._truncated += 1
                data = b""
            else:
                data = bytes(buf[start : start + ints[at + _LEN]])
            out.append((data, bytes(names[i * _NAME : i * _NAME + ints[at + _NAMELEN]])))
        return out

    def push(self, data: bytes, name: bytes) -> None:
        """Queue a reply to the raw address `name`; sent by `flush` (at once when the queue is full
        or the reply larger than a slot)."""
        self._out.push(data, name)

    def flush(self) -> None:
        """Send every queued reply; one the kernel refuses is counted and skipped."""
        self._out.flush()

    def queue(self, data: bytes, addr: Any) -> None:
        """Queue a reply to a (host, port), like `sendto` but sent by the next `flush`."""
        name = self._name(addr)
        if name is not None:
            self._out.push(data, name)

    def _send_one_python(self, data: bytes, name: bytes) -> None:
        """One datagram to a raw address now (`send_one`; the twin of udpfast.HotSocket.send)."""
        while self._sendto(self.fd, data, len(data), _MSG_DONTWAIT, name, len(name)) < 0:
            if ctypes.get_errno() != errno.EINTR:
                self._send_errors += 1
                return

    def sendto(self, data: bytes, addr: Any) -> None:
        """One datagram to a (host, port) now (the replies off the batch: errors, blocks)."""
        name = self._name(addr)
        if name is not None:
            self.send_one(data, name)

    def _name(self, addr: Any) -> bytes | None:
        """The raw address of a (host, port) (remembered), or None (counted) when it is not one."""
        name = self._sockaddrs.get(addr)
        if name is None:
            try:
                name = self._sockaddr(addr)
            except (OSError, ValueError, TypeError, IndexError, struct.error):
                self._send_errors += 1
                return None
            if len(self._sockaddrs) >= _ADDRESSES:
                self._sockaddrs.clear()
            self._sockaddrs[addr] = name
        return name

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
