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

from tutela.dns.takeover import wire

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
        self._pending: dict[int, tuple[tuple[int, str, int], asyncio.Future[Any]]] = {}
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
        if len(data) < 12:
            return
        entry = self._pending.get(int.from_bytes(data[:2], "big"))
        if entry is None:
            return
        (qid, qname, qtype), future = entry
        if future.done():
            return
        try:
            parsed = wire.parse_answer(data, qid, qname, qtype)
        except (wire.WireError, ValueError, OSError):
            parsed = self._parse_slow(data, qid, qname, qtype)
        if parsed is not None:
            future.set_result(parsed)

    @staticmethod
    def _parse_slow(data: bytes, qid: int, qname: str, qtype: int) -> tuple[str, bool, Any] | None:
        """dnspython for what the fast codec does not read (odd labels, unusual sections)."""
        import dns.exception
        import dns.flags
        import dns.message
        import dns.name

        try:
            message = dns.message.from_wire(data, ignore_trailing=True)
        except dns.exception.DNSException:
            return None  # garbage with a matching id: wait for the real answer or time out
        q = message.question[0] if len(message.question) == 1 else None
        if (
            message.id != qid
            or not message.flags & dns.flags.QR
            or q is None
            or q.rdtype != qtype
            or q.name != dns.name.from_text(qname or ".")
        ):
            return None
        answer = to_answer(message)
        return answer.rcode, bool(message.flags & dns.flags.TC), answer

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
        if self._transport is None:
            raise RuntimeError("StubClient used outside `async with`")
        qtype = wire.TYPE_CODES[rdtype]
        async with self._sem:
            qid = self._rng.randrange(65536)
            while qid in self._pending:
                qid = self._rng.randrange(65536)
            try:
                packet = wire.build_query(qid, name, qtype, rd=self.recursion_desired)
            except (wire.WireError, UnicodeError):
                packet = self._build_slow(qid, name, rdtype)
            loop = asyncio.get_running_loop()
            try:
                for _ in range(self.attempts):
                    future: asyncio.Future[Any] = loop.create_future()
                    self._pending[qid] = ((qid, name, qtype), future)
                    self._transport.sendto(packet)
                    self.sent += 1
                    try:
                        rcode, truncated, answers = await asyncio.wait_for(future, self.timeout)
                    except TimeoutError:
                        continue
                    if truncated:
                        return await self._tcp(self._make_query(qid, name, rdtype))
                    if isinstance(answers, Answer):
                        return answers
                    return Answer(rcode, answers)
                return Answer("TIMEOUT")
            finally:
                self._pending.pop(qid, None)

    def _make_query(self, qid: int, name: str, rdtype: str) -> Any:
        import dns.flags
        import dns.message

        query = dns.message.make_query(name or ".", rdtype, use_edns=0, payload=1232)
        if not self.recursion_desired:
            query.flags &= ~dns.flags.RD
        query.id = qid
        return query

    def _build_slow(self, qid: int, name: str, rdtype: str) -> bytes:
        wire_bytes: bytes = self._make_query(qid, name, rdtype).to_wire()
        return wire_bytes

    async def _tcp(self, query: Any) -> Answer:
        import dns.asyncquery
        import dns.exception

        try:
            message = await dns.asyncquery.tcp(query, self.host, timeout=self.timeout * 2, port=self.port)
        except (dns.exception.DNSException, OSError, EOFError):
            return Answer("TIMEOUT")
        return to_answer(message)
