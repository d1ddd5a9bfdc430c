"""What a recursive resolver hands the sensor: ask an authoritative server, chase CNAMEs it did
not follow (out of its zone), and build the `DnsResponse` response-side detectors judge."""

from __future__ import annotations

import dns.message
import dns.query
import dns.rdatatype

from tutela.dns.subjects import DnsAnswer, DnsQuery, DnsResponse


def resolve(server: tuple[str, int], name: str, qtype: str = "A") -> DnsResponse:
    answers: list[DnsAnswer] = []
    current = name
    rcode = 0
    for _ in range(8):
        msg = dns.query.udp(dns.message.make_query(current, qtype), server[0], port=server[1], timeout=2)
        rcode = msg.rcode()
        last = current
        for rrset in msg.answer:
            for rd in rrset:
                answers.append(DnsAnswer(rrset.name.to_text().rstrip("."), rrset.rdtype, rrset.ttl, rd.to_text()))
                if rrset.rdtype == dns.rdatatype.CNAME:
                    last = rd.target.to_text().rstrip(".")
        wanted = dns.rdatatype.from_text(qtype)
        if last == current or any(a.rtype == wanted and a.name == last for a in answers) or rcode != 0:
            break
        current = last
    return DnsResponse(DnsQuery(name, dns.rdatatype.from_text(qtype)), rcode, tuple(answers))
