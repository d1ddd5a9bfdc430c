"""The sensor's hot UDP loop in process: the compiled HotSocket.serve against its Python twin.

A developer tool (not a suite entry), like bench/dns_hotpath.py: one process, one loopback socket
pair per side, batches of `--batch` cached queries sent, served (read, answered, counted) and the
replies drained; the two sides alternate batch by batch, and the CPU time (process_time) of the
serve calls alone is summed per side. Prints µs per datagram (median of --rounds rounds).

    .venv/bin/python bench/dns_hotloop.py [--batch 32] [--batches 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import collections
import socket
import statistics
import time
from typing import Any

import dns.message
import dns.rrset

from tutela.dns import hotpath, udpbatch
from tutela.dns.answercache import AnswerCache


def side(native: Any, names: list[str]) -> tuple[Any, ...]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    batch = udpbatch.BatchSocket(sock, native=native)
    cache = AnswerCache(10_000)
    now = time.monotonic()
    queries = []
    for i, name in enumerate(names):
        q = dns.message.make_query(name, "A")
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN", "A", "192.0.2.1"))
        wire = q.to_wire()
        entry = cache.put(wire[2:], r.to_wire(), len(wire), now)
        assert entry is not None
        entry.until = now + 3600
        entry.passive = (name,) if i % 2 else ()
        queries.append(wire)
    return batch, cache._entries, queries, sock.getsockname()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    native = udpbatch._udpfast
    if native is None:
        raise SystemExit("tutela._native.udpfast is not built (python setup.py build_ext --inplace)")
    names = [f"host{i}.example.com" for i in range(200)]
    sides = {"c": side(native, names), "python": side(None, names)}
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    client.setblocking(False)
    clients: collections.Counter[str] = collections.Counter()
    served: list[Any] = []
    results: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        spent = dict.fromkeys(sides, 0.0)
        for b in range(args.batches):
            for key, (batch, entries, queries, addr) in sides.items():
                for k in range(args.batch):
                    client.sendto(queries[(b * args.batch + k) % len(queries)], addr)
                t0 = time.process_time()
                got = batch.serve(entries, clients, served, time.monotonic, hotpath.aged)
                spent[key] += time.process_time() - t0
                assert got is not None and len(got[0]) == args.batch, got
                for _ in range(args.batch):
                    client.recv(4096)
            served.clear()
        for key in sides:
            results[key].append(spent[key] / (args.batches * args.batch) * 1e6)
    for key, values in results.items():
        rounds = ", ".join(f"{v:.2f}" for v in values)
        print(f"{key}: {statistics.median(values):.2f} µs per datagram (rounds: {rounds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
