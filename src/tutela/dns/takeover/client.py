"""An asyncio stub client that multiplexes many queries over one UDP socket.

dnspython's `asyncquery.udp` opens a socket per query; a scanner checking tens of thousands of
targets spends most of its time there. This client keeps one socket, matches answers by query id
and question, retransmits on timeout, falls back to TCP on truncation, and deduplicates
identical questions in flight. Answers are parsed with dnspython.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

MAX_IN_FLIGHT = 512


@dataclass(frozen=True, slots=True)
class Answer:
    """What the scanner needs of a response: rcode, answer records and authority records."""

    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, REFUSED, TIMEOUT, ...
    answers: tuple[tuple[str, str, str], ...] = ()  # (owner, type, rdata text), owners without trailing dot
    authority: tuple[tuple[str, str, str], ...] = ()

    def of_type(self, rtype: str) -> list[str]:
        return [data for _, t, data in self.answers if t == rtype]

    @property
    def conclusive(self) -> bool:
        return self.rcode in ("NOERROR", "NXDOMAIN")


def _rrsets(section: Any) -> tuple[tuple[str, str, str], ...]:
    import dns.rdatatype

    out = []
    for rrset in section:
        owner = rrset.name.to_text().lower().rstrip(".")
        rtype = dns.rdatatype.to_text(rrset.rdtype)
        for rd in rrset:
            text = rd.to_text()
            if rtype in ("CNAME", "NS", "DNAME"):
                text = text.lower().rstrip(".")
            out.append((owner, rtype, text))
    return tuple(out)


def to_answer(message: Any) -> Answer:
    import dns.rcode

    return Answer(dns.rcode.to_text(message.rcode()), _rrsets(message.answer), _rrsets(message.authority))


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: StubClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.client._received(data)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like: retransmit handles it
        pass


class StubClient:
    """`await client.query(name, "A") -> Answer`. Use `async with StubClient(host, port) as c:`."""

    def __init__(
        self,
        host: str,
        port: int = 53,
        *,
        timeout: float = 1.0,
        attempts: int = 3,
        max_in_flight: int = MAX_IN_FLIGHT,
        recursion_desired: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.attempts = attempts
        self.recursion_desired = recursion_desired
        self.sent = 0
        self._sem = asyncio.Semaphore(max_in_flight)
        self._pending: dict[int, tuple[Any, asyncio.Future[Any]]] = {}
        self._dedupe: dict[tuple[str, str], asyncio.Future[Answer]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._rng = random.Random()

    async def __aenter__(self) -> StubClient:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), remote_addr=(self.host, self.port))
        self._transport = transport  # type: ignore[assignment]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _received(self, data: bytes) -> None:
        import dns.exception
        import dns.message

        if len(data) < 12:
            return
        qid = int.from_bytes(data[:2], "big")
        entry = self._pending.get(qid)
        if entry is None:
            return
        query, future = entry
        try:
            message = dns.message.from_wire(data, ignore_trailing=True)
        except dns.exception.DNSException:
            return  # garbage with a matching id: wait for the real answer or time out
        if not query.is_response(message):
            return
        if not future.done():
            future.set_result(message)

    async def query(self, name: str, rdtype: str) -> Answer:
        key = (name.lower().rstrip("."), rdtype)
        shared = self._dedupe.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._dedupe[key] = future
        try:
            answer = await self._query(*key)
            future.set_result(answer)
            return answer
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # consumed: nobody else may be waiting
            raise
        finally:
            del self._dedupe[key]

    async def _query(self, name: str, rdtype: str) -> Answer:
        import dns.flags
        import dns.message

        if self._transport is None:
            raise RuntimeError("StubClient used outside `async with`")
        async with self._sem:
            query = dns.message.make_query(name or ".", rdtype, use_edns=0, payload=1232)
            if not self.recursion_desired:
                query.flags &= ~dns.flags.RD
            qid = self._rng.randrange(65536)
            while qid in self._pending:
                qid = self._rng.randrange(65536)
            query.id = qid
            wire = query.to_wire()
            loop = asyncio.get_running_loop()
            try:
                for _ in range(self.attempts):
                    future: asyncio.Future[Any] = loop.create_future()
                    self._pending[qid] = (query, future)
                    self._transport.sendto(wire)
                    self.sent += 1
                    try:
                        message = await asyncio.wait_for(future, self.timeout)
                    except TimeoutError:
                        continue
                    if message.flags & dns.flags.TC:
                        return await self._tcp(query)
                    return to_answer(message)
                return Answer("TIMEOUT")
            finally:
                self._pending.pop(qid, None)

    async def _tcp(self, query: Any) -> Answer:
        import dns.asyncquery
        import dns.exception

        try:
            message = await dns.asyncquery.tcp(query, self.host, timeout=self.timeout * 2, port=self.port)
        except (dns.exception.DNSException, OSError):
            return Answer("TIMEOUT")
        return to_answer(message)
