"""The inline forwarder: asyncio (uvloop when installed) on UDP and TCP (RFC 1035, RFC 7766).

UDP hot path, all callbacks, no task per query: parse header and question from bytes, judge
(verdict cache first), then either answer (block, sinkhole) or forward to the preferred
healthy upstream on one shared socket per upstream with a fresh random id. The upstream answer
is matched by id, upstream and exact question bytes (spoofed or late answers are dropped), its id
restored, and returned byte-for-byte (EDNS0, DNSSEC records untouched) unless a response-side
detector objects. Timeouts fail over to the next upstream; when all attempts fail the client gets
SERVFAIL. A truncated (TC) upstream answer is retried over TCP, and sent if it fits the client's
UDP size, else passed on truncated so the client retries over TCP.

TCP clients: a bounded number of connections, each read with idle and per-message timeouts,
forwarded over TCP with the same failover. Malformed queries get FORMERR when a header can be
read, otherwise they are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tutela.core.config import TutelaSettings
from tutela.core.errors import ServiceError
from tutela.core.findings import Action
from tutela.core.registry import DetectorRegistry
from tutela.core.services import split_listen
from tutela.core.stalls import GcControl, LagSampler
from tutela.core.store import EventWriter
from tutela.dns import udpbatch, wire
from tutela.dns.answercache import AnswerCache
from tutela.dns.cached import CachedAnswers, ServedCounts
from tutela.dns.engine import DnsEngine
from tutela.dns.fastpath import FastPath, drop_oldest
from tutela.dns.hotpath import answer_hot
from tutela.dns.metrics import BUCKETS
from tutela.dns.settings import DnsSettings
from tutela.dns.subjects import DnsAnswer, DnsQuery

_DOWN_AFTER = 3  # consecutive timeouts before an upstream is avoided
_DOWN_FOR_S = 5.0
_SWEEP_S = 0.02
_SWITCH_INTERVAL_S = 0.0005  # how long a background thread may hold the GIL while the loop waits
_ALLOW = Action.ALLOW
_MAX_TCP_MESSAGE = 65535
_ANSWER_MEMO = 20_000  # distinct upstream answers remembered (the oldest 1/64 dropped when full)
_HOT_BUCKET = BUCKETS[0]  # hot-path answers faster than this are counted, not binned one by one
_DRAIN_BATCHES = 8  # batches of client datagrams read per wakeup before the loop runs anything else
_QUEUE_FROM = 3  # from this many client datagrams per batch (a busy loop), sends are queued and batched
_aged = AnswerCache.body
_HEADER = wire._HEADER
_U16_PACK = wire._U16.pack
_getrandbits = random.getrandbits
_new_question = wire._new_question
_monotonic = time.monotonic


def _itself(addr: Any) -> Any:
    return addr


class _Known(list):  # type: ignore[type-arg]
    """A memo entry of an upstream answer: [rcode, answers, clean-until, clean, passive keys], plus
    `passive`/`served` so ServedCounts can count its repeats in passive DNS."""

    __slots__ = ("passive", "served")

    def __init__(self, items: Any) -> None:
        super().__init__(items)
        self.passive: Any = ()
        self.served = 0


class Upstream:
    __slots__ = ("addr", "down_until", "failures", "host", "port", "transport")

    def __init__(self, spec: str) -> None:
        self.host, self.port = split_listen(spec)
        self.addr = (self.host, self.port)
        self.transport: asyncio.DatagramTransport | None = None
        self.failures = 0
        self.down_until = 0.0

    def __repr__(self) -> str:
        return f"{self.host}:{self.port}"


class _Pending:
    __slots__ = ("addr", "attempts", "data", "deadline", "fast_until", "q", "qbytes", "query", "t0", "uid", "upstream")

    def __init__(
        self, data: bytes, q: wire.Question, query: DnsQuery | None, addr: Any, t0: float, fast_until: float = 0.0
    ) -> None:
        self.data = data
        self.fast_until = fast_until
        self.q = q
        self.query = query
        self.addr = addr
        self.t0 = t0
        self.qbytes = data[12 : q.end]
        self.attempts = 0
        self.upstream = 0
        self.uid = 0
        self.deadline = 0.0


class _ClientUdp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsSensor) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.server._udp = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.server.on_query(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors from clients: nothing to do
        return


class _UpstreamUdp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsSensor, index: int) -> None:
        self.server = server
        self.index = index

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.server.on_upstream(self.index, data)

    def error_received(self, exc: Exception) -> None:  # port unreachable: counted, timeouts fail over
        self.server.engine.metrics.upstream_errors += 1


class DnsSensor:
    def __init__(
        self,
        engine: DnsEngine,
        listen: str,
        upstreams: Sequence[str],
        *,
        metrics_listen: str | None = None,
        worker: int = 0,
        reuse_port: bool = False,
    ):
        if not upstreams:
            raise ServiceError("no upstream resolver", hint="pass --upstream HOST:PORT or set dns.upstreams")
        self.engine = engine
        self.settings = engine.dns
        self.listen = listen
        self.upstreams = [Upstream(u) for u in upstreams]
        if any(u.addr == split_listen(listen) for u in self.upstreams):
            raise ServiceError(f"upstream {listen} is the sensor itself", hint="choose another --upstream")
        self.metrics_listen = metrics_listen
        self.metrics = engine.metrics
        self.pending: dict[int, _Pending] = {}
        self._timeout_s = engine.dns.timeout_s
        self._questions = wire.QuestionMemo(min(50_000, engine.dns.cache_size))  # repeats skip name decoding
        self._answer_memo: dict[bytes, list[Any]] = {}
        dns = engine.dns
        self._fast = FastPath(
            min(dns.cache_size, 200_000), enabled=bool(engine._ttl) and not engine.every_query_detectors
        )
        self._clients = engine.top.clients
        self.served = ServedCounts(engine)  # passive-DNS counts of repeated answers, drained once a second
        self.cached: CachedAnswers | None = CachedAnswers(dns, engine, self.served) if dns.answer_cache_size else None
        self.answers = self.cached.cache if self.cached is not None else None  # the AnswerCache, for metrics
        self._hot_entries: dict[bytes, Any] = self.answers._entries if self.answers is not None else {}
        self.metrics.answer_cache = self.answers
        self.gc = GcControl(self.metrics.stalls, dns.gc_freeze_s, dns.gc_full_s)
        self._lag = LagSampler(self.metrics.stalls)
        self._timeouts: deque[tuple[float, int, _Pending]] = deque()
        self._udp: Any = None  # what sends to clients: the datagram transport or the BatchSocket
        self._batch: udpbatch.BatchSocket | None = None
        # batched path, busy loop: queries to upstreams and their answers to clients are queued and leave
        # in one sendmmsg per batch or loop iteration (each send on loopback wakes the reader: once per
        # batch); at low rates an iteration holds one of each, and queueing would only add work
        self._up_queues: list[udpbatch.DatagramQueue | None] = []
        self._flush_due = False
        self._busy = False  # the last client batch had _QUEUE_FROM datagrams or more: queue the sends
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._stop: asyncio.Event | None = None
        self.worker = worker
        self.reuse_port = reuse_port
        self._top_path = engine.settings.home / "run" / f"dns-top-{worker}.json"
        self.bound: tuple[str, int] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.engine.warmup()
        self.gc.start(loop)
        host, port = split_listen(self.listen)
        udp_sock, tcp = None, None
        for _ in range(20 if port == 0 else 1):  # port 0: a port free for both UDP and TCP
            udp_sock = self._udp_socket(host, port)
            self.bound = udp_sock.getsockname()[:2]
            try:
                tcp = await asyncio.start_server(
                    self._tcp_client, host, self.bound[1], reuse_address=True, reuse_port=self.reuse_port, backlog=256
                )
                break
            except OSError as exc:
                udp_sock.close()
                if port != 0:
                    raise ServiceError(f"cannot listen on {self.listen} (tcp): {exc.strerror or exc}") from None
        if tcp is None or udp_sock is None:
            raise ServiceError(f"cannot find a port free for UDP and TCP on {host}")
        self._servers.append(tcp)
        for i, up in enumerate(self.upstreams):
            transport, _ = await loop.create_datagram_endpoint(
                functools.partial(_UpstreamUdp, self, i), remote_addr=up.addr
            )
            with contextlib.suppress(OSError):
                transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            up.transport = transport
        # clients last: a query waiting already was forwarded to no socket (the upstreams' did not
        # exist yet) and only retried by the sweep after dns.timeout_s
        if self.settings.udp_batch and udpbatch.available():
            self._batch = self._udp = self.metrics.udp_batch = udpbatch.BatchSocket(udp_sock)
            self._up_queues = [self._upstream_queue(up) for up in self.upstreams]
            self._loop = loop
            loop.add_reader(self._batch.fd, self._on_readable)
        else:
            await loop.create_datagram_endpoint(lambda: _ClientUdp(self), sock=udp_sock)
        if self.metrics_listen:
            mhost, mport = split_listen(self.metrics_listen)
            self._servers.append(await asyncio.start_server(self._metrics_client, mhost, mport, reuse_address=True))
        loop.call_later(_SWEEP_S, self._sweep)
        self._lag.start(loop)
        loop.call_later(self.settings.top_interval_s, self._write_top)
        self.served.start(loop)

    @staticmethod
    def _upstream_queue(up: Upstream) -> udpbatch.DatagramQueue | None:
        """A send queue on an upstream's connected socket (None: its transport sends one by one). A
        query that leaves alone goes through the transport, as before (errors: `error_received`)."""
        transport = up.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if transport is None or sock is None:
            return None
        return udpbatch.DatagramQueue(sock.fileno(), single=lambda data, _name: transport.sendto(data))

    def _flush_soon(self) -> None:
        """Send what is queued when this loop iteration's callbacks are done (once per iteration)."""
        if not self._flush_due and self._loop is not None:
            self._flush_due = True
            self._loop.call_soon(self._flush_out)

    def _flush_out(self) -> None:
        self._flush_due = False
        self._send_queued()

    def _send_queued(self) -> None:
        """Send the queued queries to upstreams and answers to clients (a refused query counts as an
        upstream error, as the transport's error_received does; its timeout fails it over)."""
        for i, queue in enumerate(self._up_queues):  # empty off the batched path
            if queue is None:
                continue
            up = self.upstreams[i]
            if queue.queued:
                if up.transport is None or up.transport.is_closing():  # its socket may be gone (or its fd reused)
                    self.metrics.upstream_errors += queue.drop()
                else:
                    queue.flush()
            if queue.failed:  # refused here or when the queue filled up
                self.metrics.upstream_errors += queue.take_failed()
        if self._batch is not None:
            self._batch.flush()

    def _udp_socket(self, host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ServiceError(f"cannot listen on {self.listen} (udp): {exc.strerror or exc}") from None
        return sock

    async def serve_forever(self) -> None:
        await self.start()
        self._stop = asyncio.Event()
        await self._stop.wait()
        await self.close()

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def close(self) -> None:
        self._closing = True
        self._flush_out()
        for srv in self._servers:
            srv.close()
        if self._batch is not None:
            asyncio.get_running_loop().remove_reader(self._batch.fd)
            self._batch.close()
        elif self._udp is not None:
            self._udp.close()
        for up in self.upstreams:
            if up.transport is not None:
                up.transport.close()
        for task in list(self._tasks):
            task.cancel()
        self.served.close()
        self.gc.close()
        self._lag.close()
        self._write_top()
        self.engine.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- UDP ------------------------------------------------------------------------------------

    def _reply(self, data: bytes, addr: Any) -> None:
        """A reply to a client off the hot path: queued on the batched path while the loop is busy
        (sent with the others of its batch or loop iteration), else sent now."""
        batch = self._batch
        if batch is not None and self._busy:
            batch.queue(data, addr)
            self._flush_soon()
        elif self._udp is not None:
            self._udp.sendto(data, addr)

    def _send(self, data: bytes, addr: Any, t0: float) -> None:
        self._reply(data, addr)
        m = self.metrics
        m.observe_latency(time.monotonic() - t0)
        if len(data) >= 4:
            m.rcodes[data[3] & 0x0F] += 1

    def on_query(self, data: bytes, addr: Any) -> None:
        """A UDP query (the event loop's datagram protocol: one call per datagram)."""
        now = _monotonic()
        hot, _, errors = answer_hot(
            [(data, addr)], self._udp.sendto, _itself, now, self._hot_entries, self._clients, self.served.pending
        )
        if errors:
            self.metrics.hot_errors += errors
        if hot:
            self._count_hot(hot, now)
        else:
            self._query(data, addr, now)

    def _on_readable(self) -> None:
        """The client socket is readable (batched path): up to _DRAIN_BATCHES batches of datagrams.
        `serve` (C, or its Python twin; see udpbatch) reads a batch in one system call and sends its
        hot-path answers (hotpath.py) in one more, before anything else of the batch runs; the rest
        then goes the usual way (`_query`), so a slow query never holds back the cached answers read
        with it."""
        batch = self._batch
        assert batch is not None
        serve, address, entries, clients = batch.serve, batch.address, self._hot_entries, self._clients
        scheduled = self._flush_due
        self._flush_due = True  # what these batches queue is sent below, after each batch: no call_soon
        try:
            for _ in range(_DRAIN_BATCHES):
                got = serve(entries, clients, self.served.pending, _monotonic, _aged)
                if got is None:
                    return
                hot, rest, now, received = got
                self._busy = received >= _QUEUE_FROM
                if hot:
                    self._count_hot(hot, now)
                for data, name in rest:  # a datagram cut by the kernel (b"") is dropped as malformed
                    try:
                        self._query(data, address(name), now)
                    except Exception as exc:  # one query's bug must not lose the batch's others
                        self._query_failed(exc)
                if rest:
                    self._send_queued()  # this batch's forwarded queries and other replies leave together
                if received < batch.slots:
                    return
        finally:
            self._flush_due = scheduled

    def _query_failed(self, exc: Exception) -> None:
        """A query's handling raised (a bug): counted and reported like the event loop reports an
        exception in a datagram protocol's callback, which loses that one datagram only."""
        self.metrics.query_errors += 1
        asyncio.get_running_loop().call_exception_handler(
            {"message": "tutela dns: a UDP query failed", "exception": exc}
        )

    def _count_hot(self, rcodes: bytes, received: float) -> None:
        """Count hot-path answers sent now to queries received at `received` (one datagram, or a
        batch: each then took as long as the whole batch). Each faster than the first latency
        bucket is a list index and a float add (see Metrics.hot)."""
        m = self.metrics
        t = _monotonic() - received
        if t < _HOT_BUCKET:
            counts = m.hot
            for rcode in set(rcodes):
                counts[rcode] += rcodes.count(rcode)
            m.hot_latency_s += t * len(rcodes)
        else:
            m.count_hot_late(rcodes, t)

    def _query(self, data: bytes, addr: Any, now: float) -> None:
        """A query off the hot path: a question seen before (same bytes) whose verdict is a fresh
        clean allow is answered from the answer cache or forwarded, with no parsing, no detector call
        and no subject object; anything else is parsed and judged (`_slow_query`)."""
        m = self.metrics
        m.queries_udp += 1
        hit = self._fast.lookup(data, now)
        if hit is None:
            self._slow_query(data, addr, now)
            return
        fast, qend = hit
        m.cache_hits += 1
        m.allowed += 1
        self._clients[addr[0]] += 1
        cached = self.cached
        entry = None
        if cached is not None:
            entry = cached.lookup(data[2:], now)
            if entry is not None and not entry.live:
                self._arm(entry, fast[0])
                self._reply(cached.serve(entry, data, now), addr)
                m.rcodes[entry.rcode] += 1
                m.observe_latency(_monotonic() - now)
                return
        qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
        q = _new_question(wire.Question, (qid, flags, fast[1], fast[2], fast[3], qend, qd, an, ns, ar))
        self._dispatch(data, q, None, addr, now, entry, fast[0])

    @staticmethod
    def _arm(entry: Any, verdict_until: float) -> None:
        """Let the hot path serve a cached answer until its request-side verdict or the answer
        expires, whichever is first (never when a live response-side detector must see it)."""
        if verdict_until and not entry.live:
            entry.until = min(entry.expires, verdict_until)

    def _slow_query(self, data: bytes, addr: Any, t0: float) -> None:
        m = self.metrics
        try:
            q = self._questions.parse(data)
        except wire.WireError:
            m.malformed += 1
            if len(data) >= 12 and not data[2] & 0x80:
                self._send(wire.make_error(data, None, wire.FORMERR), addr, t0)
            return
        if q.flags & 0x8000:  # a response sent to us: never answer (reflection loops)
            m.malformed += 1
            return
        if q.flags & 0x7800:  # opcode other than QUERY
            self._send(wire.make_error(data, q, wire.NOTIMP), addr, t0)
            return
        query = DnsQuery(q.name, q.qtype, addr[0], "udp")
        engine = self.engine
        verdict = engine.judge_query(query)
        fast_until = 0.0  # until when the hot path may serve this query's cached answer
        if verdict.action is _ALLOW and not verdict.failures:
            m.allowed += 1
            if self.settings.log_allowed:
                engine.record(query, verdict, "request")
            else:
                fast_until = self._fast.remember(data, q, engine.last_expiry)
        else:
            engine.record(query, verdict, "request")
            answer = engine.answer(verdict, data, q)
            if answer is not None:
                self._send(answer, addr, t0)
                return
        entry = self.cached.lookup(data[2:], t0) if self.cached is not None else None
        self._dispatch(data, q, query, addr, t0, entry, fast_until)

    def _dispatch(
        self,
        data: bytes,
        q: wire.Question,
        query: DnsQuery | None,
        addr: Any,
        t0: float,
        entry: Any,
        fast_until: float = 0.0,
    ) -> None:
        """Answer an allowed query: from a cached answer (judged again by the live response-side
        detectors when it has any for its rcode), else by forwarding it upstream. `fast_until`:
        until when its request-side verdict is a clean allow the hot path may reuse (0: never)."""
        if entry is not None:
            self._arm(entry, fast_until)
            response = self.cached.serve(entry, data, t0)  # type: ignore[union-attr]
            if entry.live:
                query = query or DnsQuery(q.name, q.qtype, addr[0], "udp")
                response = self._judge_cached(data, q, query, response, entry)
            self._send(response, addr, t0)
            return
        if len(self.pending) >= self.settings.max_pending:
            self.metrics.overload_drops += 1
            self._send(wire.make_error(data, q, wire.SERVFAIL), addr, t0)
            return
        self._forward(_Pending(data, q, query, addr, t0, fast_until))

    def _pick(self, attempt: int) -> int:
        ups = self.upstreams
        if attempt == 0 and not ups[0].down_until:
            return 0
        now = time.monotonic()
        healthy = [i for i, u in enumerate(ups) if u.down_until <= now] or list(range(len(ups)))
        return healthy[attempt % len(healthy)]

    def _forward(self, p: _Pending) -> None:
        pending = self.pending
        uid = _getrandbits(16)
        while uid in pending:
            uid = _getrandbits(16)
        p.uid = uid
        attempts = p.attempts
        ups = self.upstreams
        index = 0 if attempts == 0 and not ups[0].down_until else self._pick(attempts)
        p.upstream = index
        p.attempts = attempts + 1
        p.deadline = deadline = time.monotonic() + self._timeout_s
        pending[uid] = p
        self._timeouts.append((deadline, uid, p))
        transport = ups[index].transport
        if transport is not None:
            queue = self._up_queues[index] if self._busy and self._up_queues else None
            if queue is not None:
                queue.push(_U16_PACK(uid) + p.data[2:])  # the query with our id
                self._flush_soon()
            else:
                transport.sendto(_U16_PACK(uid) + p.data[2:])

    def on_upstream(self, index: int, data: bytes) -> None:
        if len(data) < 12:
            return
        uid = (data[0] << 8) | data[1]
        p = self.pending.get(uid)
        if p is None or p.upstream != index or data[12 : 12 + len(p.qbytes)] != p.qbytes:
            return  # late, spoofed or for another upstream
        del self.pending[uid]
        up = self.upstreams[index]
        if up.failures or up.down_until:
            up.failures = 0
            up.down_until = 0.0
        if data[2] & 0x02:  # TC: retry over TCP
            self.metrics.tc_retries += 1
            self._spawn(self._tc_retry(p, data))
            return
        self._deliver(p, data, cache=True)

    def _deliver(self, p: _Pending, data: bytes, *, cache: bool = False) -> None:
        q = p.q
        response, clean, known = self._judge_upstream(p, data)
        if clean and cache and self.cached is not None:
            engine = self.engine
            live = bool(engine.response_detectors) and bool(engine._live_for(data[3] & 0x0F))
            entry = self.cached.store(p.data[2:], data, q.end, _monotonic(), known, live)
            if entry is not None:
                self._arm(entry, p.fast_until)
        if len(response) > 512 and len(response) > self._client_size(p.data, q):
            response = wire.truncate(response, q)
        self._reply(_U16_PACK(q.id) + response[2:], p.addr)  # the client's id back
        m = self.metrics
        m.observe_latency(time.monotonic() - p.t0)
        m.rcodes[response[3] & 0x0F] += 1

    @staticmethod
    def _client_size(data: bytes, q: wire.Question) -> int:
        return (wire.edns_udp_size(data, q) or 512) if q.arcount else 512

    async def _tc_retry(self, p: _Pending, truncated: bytes) -> None:
        full = await self._tcp_forward(p.data, p.q.end)
        if full is None or full[2] & 0x02:
            self._deliver(p, truncated)
        else:
            self._deliver(p, full)

    def _judge_upstream(self, p: _Pending, response: bytes) -> tuple[bytes, bool, Any]:
        """Response-side verdict on an upstream answer to a UDP query: (what to send, whether it
        was a clean allow, the memo entry of its parsed answers or None).

        The memo (by the answer's bytes after the id and first flags octet) also keeps the verdict
        of the cacheable response-side detectors while the verdict cache's TTL runs: a repeat of a
        known answer with no live detector for its rcode then costs a lookup, plus counting it in
        passive DNS."""
        engine = self.engine
        if not engine.response_detectors and engine.passive is None:  # nothing reads the answer
            return response, True, None
        key = response[3:]
        known = self._answer_memo.get(key)
        if known is not None and known[3] and known[2] > p.t0:  # clean, no live detector for its rcode
            if known.passive:
                if not known.served:
                    self.served.pending.append(known)
                known.served += 1
            return response, True, known
        q = p.q
        if known is None:
            try:
                known = self._remember_answers(key, response, q)
            except (wire.WireError, struct.error):
                return response, False, None  # the upstream's business; the client's parser will judge it
        query = p.query or DnsQuery(q.name, q.qtype, p.addr[0], "udp")
        verdict = engine.judge_answer(query, known[0], known[1], passive_keys=known[4] if engine.passive else None)
        if verdict.action is Action.ALLOW and not verdict.failures:
            if engine._ttl and not engine._live_for(known[0]):
                known[2] = p.t0 + engine._ttl
                known[3] = True
            return response, True, known
        engine.record(query, verdict, "response", rcode=known[0])
        replacement = engine.answer(verdict, p.data, q)
        return (replacement if replacement is not None else response), False, known

    def _judge_cached(self, data: bytes, q: wire.Question, query: DnsQuery, response: bytes, entry: Any) -> bytes:
        """The live response-side detectors (per-client state, e.g. NXDOMAIN bursts) on a cached answer."""
        return self._verdict_on(data, q, query, response, entry.records[0], entry.records[1])

    def _judge_answer(self, data: bytes, q: wire.Question, query: DnsQuery, response: bytes) -> bytes:
        """Response-side detectors on an upstream answer (TCP path); the answer or its replacement."""
        if not self.engine.response_detectors and self.engine.passive is None:
            return response
        try:
            rcode, records = self._answers_of(response, q)
        except (wire.WireError, struct.error):
            return response
        return self._verdict_on(data, q, query, response, rcode, records)

    def _verdict_on(
        self, data: bytes, q: wire.Question, query: DnsQuery, response: bytes, rcode: int, records: Any
    ) -> bytes:
        engine = self.engine
        verdict = engine.judge_answer(query, rcode, records)
        if verdict.action is Action.ALLOW and not verdict.failures:
            return response
        engine.record(query, verdict, "response", rcode=rcode)
        replacement = engine.answer(verdict, data, q)
        return replacement if replacement is not None else response

    def _remember_answers(self, key: bytes, response: bytes, q: wire.Question) -> list[Any]:
        """[rcode, answers, clean-until, clean, passive keys] of an upstream response, memoised by its
        bytes after the id and the flags' first octet: a popular name comes back with the same answer
        many times a second (until its TTL ticks), and then neither the records nor the DnsAnswer
        objects are built again. Everything parse_answers reads (rcode, counts, question, records)
        is inside the key; the question is the query's own (checked by on_upstream)."""
        rcode, records = wire.parse_answers(response, q)
        answers = tuple([DnsAnswer(r.name, r.rtype, r.ttl, r.data) for r in records])
        passive = self.engine.passive
        keys = passive.keys_for(rcode, answers) if passive is not None else ()
        known = _Known((rcode, answers, 0.0, False, keys))
        known.passive = keys
        memo = self._answer_memo
        if len(memo) >= _ANSWER_MEMO:
            drop_oldest(memo)
        memo[key] = known
        return known

    def _answers_of(self, response: bytes, q: wire.Question) -> tuple[int, tuple[DnsAnswer, ...]]:
        key = response[3:]
        known = self._answer_memo.get(key)
        if known is None:
            known = self._remember_answers(key, response, q)
        return known[0], known[1]

    def drain_served(self) -> None:
        """Count the answers served from the answer cache in passive DNS now (tests, shutdown)."""
        self.served.drain()

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        if self._closing:
            return
        now = time.monotonic()
        timeouts = self._timeouts
        pending = self.pending
        while timeouts and timeouts[0][0] <= now:
            _, uid, p = timeouts.popleft()
            if pending.get(uid) is not p:
                continue
            del pending[uid]
            self.metrics.upstream_timeouts += 1
            up = self.upstreams[p.upstream]
            up.failures += 1
            if up.failures >= _DOWN_AFTER:
                up.down_until = now + _DOWN_FOR_S
            if p.attempts < min(self.settings.max_attempts, max(len(self.upstreams), 1) * 2):
                self._forward(p)
            else:
                self._send(wire.make_error(p.data, p.q, wire.SERVFAIL), p.addr, p.t0)
        self.metrics.pending = len(pending)
        loop.call_later(_SWEEP_S, self._sweep)

    # -- TCP ------------------------------------------------------------------------------------

    async def _tcp_forward(self, data: bytes, qend: int) -> bytes | None:
        """One query over TCP with failover across upstreams; None when every attempt failed.
        The answer must carry the query's id and its exact question (bytes 12..qend)."""
        timeout = self.settings.timeout_s
        tried = 0
        attempts = min(self.settings.max_attempts, max(len(self.upstreams), 1) * 2)
        while tried < attempts:
            up = self.upstreams[self._pick(tried)]
            tried += 1
            writer = None
            try:
                async with asyncio.timeout(timeout):
                    reader, writer = await asyncio.open_connection(up.host, up.port)
                    writer.write(struct.pack("!H", len(data)) + data)
                    await writer.drain()
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    answer = await reader.readexactly(size)
                if answer[:2] == data[:2] and answer[12:qend] == data[12:qend]:
                    return answer
                self.metrics.upstream_errors += 1
            except TimeoutError:
                self.metrics.upstream_timeouts += 1
            except (OSError, asyncio.IncompleteReadError):
                self.metrics.upstream_errors += 1
            finally:
                if writer is not None:
                    writer.close()
        return None

    async def resolve_stream(self, data: bytes, client: str) -> bytes | None:
        """The answer to one query received over TCP; None to close the connection."""
        t0 = time.perf_counter()
        m = self.metrics
        m.queries_tcp += 1
        try:
            q = wire.parse_query(data)
        except wire.WireError:
            m.malformed += 1
            return wire.make_error(data, None, wire.FORMERR) if len(data) >= 12 and not data[2] & 0x80 else None
        if q.flags & 0x8000:
            m.malformed += 1
            return None
        if q.flags & 0x7800:
            return wire.make_error(data, q, wire.NOTIMP)
        query = DnsQuery(q.name, q.qtype, client, "tcp")
        verdict = self.engine.judge_query(query)
        if verdict.action is not Action.ALLOW or verdict.failures:
            self.engine.record(query, verdict, "request")
        else:
            m.allowed += 1
            if self.settings.log_allowed:
                self.engine.record(query, verdict, "request")
        answer = self.engine.answer(verdict, data, q)
        if answer is None:
            upstream = await self._tcp_forward(data, q.end)
            answer = (
                wire.make_error(data, q, wire.SERVFAIL)
                if upstream is None
                else self._judge_answer(data, q, query, upstream)
            )
        m.observe_latency(time.perf_counter() - t0)
        m.rcodes[answer[3] & 0x0F] += 1
        return answer

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        m = self.metrics
        if m.tcp_clients >= self.settings.tcp_max_clients:
            m.tcp_refused += 1
            writer.close()
            return
        m.tcp_clients += 1
        peer = writer.get_extra_info("peername")
        client = peer[0] if peer else ""
        try:
            while not self._closing:
                async with asyncio.timeout(self.settings.tcp_idle_s):
                    head = await reader.readexactly(2)
                size = struct.unpack("!H", head)[0]
                async with asyncio.timeout(self.settings.timeout_s * 2):
                    data = await reader.readexactly(size)
                answer = await self.resolve_stream(data, client)
                if answer is None:
                    break
                writer.write(struct.pack("!H", len(answer)) + answer)
                async with asyncio.timeout(self.settings.tcp_idle_s):
                    await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            m.tcp_clients -= 1
            writer.close()

    # -- metrics and top --------------------------------------------------------------------------

    async def _metrics_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readuntil(b"\r\n\r\n")
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b"/"
            if path.split(b"?")[0] in (b"/metrics", b"/"):
                body, status = self.metrics.render().encode(), b"200 OK"
                ctype = b"text/plain; version=0.0.4; charset=utf-8"
            elif path == b"/top":
                body, status = json.dumps(self.engine.top.snapshot(self.metrics)).encode(), b"200 OK"
                ctype = b"application/json"
            else:
                body, status, ctype = b"not found\n", b"404 Not Found", b"text/plain"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: "
                + ctype
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def _write_top(self) -> None:
        self.engine.top.trim()  # the fast path counts clients without trimming
        try:
            snap = self.engine.top.snapshot(self.metrics)
            snap["listen"] = self.listen
            snap["pid"] = os.getpid()
            write_json_atomic(self._top_path, snap)
        except OSError as exc:
            print(f"tutela dns: cannot write {self._top_path}: {exc}", file=sys.stderr)
        if not self._closing:
            asyncio.get_running_loop().call_later(self.settings.top_interval_s, self._write_top)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed (the `dns` extra), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _start_keeper(settings: TutelaSettings) -> subprocess.Popen[bytes]:
    """The store keeper child (tutela/dns/keeper.py): DuckDB work out of the sensor's process."""
    return subprocess.Popen(
        [sys.executable, "-m", "tutela.dns.keeper", "--home", str(settings.home), "--store",
         str(settings.store_path), "--parent", str(os.getpid())],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _fork_workers(workers: int) -> tuple[int, list[int]]:
    """Fork workers-1 children (before any thread or event loop exists): (this worker's index, children)."""
    children: list[int] = []
    for index in range(1, workers):
        pid = os.fork()
        if pid == 0:
            return index, []
        children.append(pid)
    return 0, children


def _metrics_for(metrics_listen: str | None, worker: int) -> str | None:
    if not metrics_listen or worker == 0:
        return metrics_listen
    host, port = split_listen(metrics_listen)
    return f"[{host}]:{port + worker}" if ":" in host else f"{host}:{port + worker}"


def run(
    settings: TutelaSettings,
    registry: DetectorRegistry,
    listen: str,
    upstreams: Sequence[str],
    *,
    metrics_listen: str | None = None,
    workers: int = 1,
) -> None:
    """Serve until SIGINT/SIGTERM: the process behind `tutela dns serve` and `tutela up`.

    With workers > 1 the process forks; every worker binds the same port with SO_REUSEPORT (the
    kernel spreads clients across them) and keeps its own caches, per-client state and event writer.
    Worker i serves its own metrics on the metrics port + i and writes run/dns-top-<i>.json.
    """
    if workers > 1 and split_listen(listen)[1] == 0:
        raise ServiceError("--workers needs a fixed port, not 0")
    worker, children = _fork_workers(workers) if workers > 1 else (0, [])
    keeper = settings.section("dns", DnsSettings).store_keeper
    writer = EventWriter(
        settings.home,
        settings.store_path,
        flush_interval=settings.store.flush_interval,
        max_buffer=settings.store.max_buffer,
        ingest_interval=None if keeper else 5.0,
    )
    engine = DnsEngine.from_settings(settings, registry, writer=writer)
    if engine.dns.passive_dns:
        from tutela.dns.takeover.passive import PassiveDnsRecorder

        engine.passive = PassiveDnsRecorder(settings.home, settings.store_path, spool=keeper)
        engine.passive.start()
    keeper_proc = _start_keeper(settings) if keeper and worker == 0 else None
    metrics_listen = _metrics_for(metrics_listen, worker)
    sensor = DnsSensor(engine, listen, upstreams, metrics_listen=metrics_listen, worker=worker, reuse_port=workers > 1)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    # The spool writers' threads run Python code; with the default 5 ms switch interval each of their
    # GIL turns stalled every query in flight for up to 5 ms. This process serves DNS only.
    sys.setswitchinterval(_SWITCH_INTERVAL_S)
    writer.start()

    def watch_children() -> None:  # a worker that dies takes the others down: `tutela up` then sees it
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    print(f"tutela dns: worker pid {pid} exited; stopping", file=sys.stderr, flush=True)
                    sensor.request_stop()
                    return
        loop.call_later(1.0, watch_children)

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, sensor.request_stop)
        loop.run_until_complete(sensor.start())
        names = ", ".join(d.id for d in engine.detectors) or "none"
        print(
            f"tutela dns: worker {worker} listening on {listen} (udp+tcp), upstreams "
            f"{', '.join(map(str, sensor.upstreams))}, detectors {names}"
            + (f", metrics on http://{metrics_listen}/metrics" if metrics_listen else ""),
            flush=True,
        )
        sensor._stop = asyncio.Event()
        if children:
            loop.call_later(1.0, watch_children)
        loop.run_until_complete(sensor._stop.wait())
        loop.run_until_complete(sensor.close())
    finally:
        if keeper_proc is not None:
            keeper_proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                keeper_proc.wait(timeout=30)
        if engine.passive is not None:
            engine.passive.close()
        writer.close()
        if keeper:
            from tutela.dns.keeper import keep_once

            keep_once(settings.home, settings.store_path)  # what the keeper had not moved yet
        loop.close()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
