"""The sensor's hot path, in Python: repeated queries answered from the answer cache untouched.

The rule: the exact query (all but its id) was answered from the answer cache before, its
request-side verdict is still a fresh clean allow and no live response-side detector must see its
answer (`_Entry.until`, set by the sensor's `_arm`): the cached bytes go out with the client's id
(TTLs aged), with no parsing, no detector call, no object built. Top clients: one Counter add;
passive DNS: one int (drained once a second by ServedCounts).

This is the reference twin of the C hot loop (tutela/_native/udpfast.c, `HotSocket.serve`): the
same rule, checks and counting in the same order, compared by tests/dns/test_udpfast.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tutela.dns.answercache import AnswerCache

aged = AnswerCache.body


def answer_hot(
    got: Iterable[tuple[bytes, Any]],
    send: Callable[[bytes, Any], None],
    address: Callable[[Any], tuple[Any, ...]],
    now: float,
    entries: dict[bytes, Any],
    clients: Any,
    served: list[Any],
) -> tuple[bytes, list[tuple[bytes, Any]], int]:
    """Answer the datagrams `got` ((query, sender) pairs) the hot path can answer, with
    `send(reply, sender)`. Returns their rcodes (for the sensor's `_count_hot`, once they are sent),
    the other datagrams, and how many Python errors were absorbed: an entry that cannot be read
    sends its datagram to the slow path; a count that fails after the reply went out is skipped."""
    get = entries.get
    hot = bytearray()
    rest = []
    errors = 0
    for data, sender in got:
        entry = get(data[2:])
        if entry is None:
            rest.append((data, sender))
            continue
        try:
            if entry.until <= now:
                rest.append((data, sender))
                continue
            body = entry.aged if entry.age == int(now - entry.stored) else aged(entry, now)
            reply = data[:2] + body
            hot.append(entry.rcode)
        except Exception:
            errors += 1
            rest.append((data, sender))
            continue
        send(reply, sender)
        try:
            if entry.passive:
                if not entry.served:
                    served.append(entry)
                entry.served += 1
            clients[address(sender)[0]] += 1
        except Exception:
            errors += 1
    return bytes(hot), rest, errors
