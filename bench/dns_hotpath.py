"""In-process benchmark of the DNS sensor's UDP data path: no sockets, deterministic, per-stage timings.

Run from the repository root (about a minute):

    nice .venv/bin/python bench/dns_hotpath.py [--queries 100000] [--warmup 50000] [--sets issue3,default] [--profile]

Why: dnsperf against the live sensor measures the kernel, uvloop, dnsperf and Unbound as well as the
sensor, on a shared machine; this measures only the Python the sensor runs per query, so a change to
the hot path shows up clearly. It drives the real `DnsSensor.on_query` / `DnsSensor.on_upstream`
(the callbacks uvloop calls) with raw packets: the client and upstream transports are replaced by
objects that capture what would be sent, and each forwarded query is answered at once with an
Unbound-like response (one A/AAAA record, TTL 300, the query's question echoed). So parse ->
judge_query -> forward bookkeeping -> upstream match -> parse answers -> judge_answer -> record ->
send run exactly as inline, with the event writer and the passive-DNS recorder on, as `tutela dns serve`.

Traffic: the same mix as bench/dns_sensor.py (Zipf-like popularity over --names distinct names, 2%
blocklisted, 1% lookalikes, 20% AAAA) from --clients client addresses, seeded, so runs are comparable.
`--mix distinct` instead sends the memory run's names (`n<i>.site<i % 2000>.com A`, every query a name
never seen before): the first-sighting path alone, whose µs per query is the cost of one new name.

Detector sets: "issue3" (blocklist of 100k names, rebinding, newly observed, lookalike of 20 brands,
NXDOMAIN bursts, random subdomains: what bench/dns_sensor.py runs) and "default" (no `detectors.dns`
in the config: every registered dns detector with its defaults, as a fresh install runs).

Figures: µs per query for the whole path (timed without instrumentation), then the inclusive time of
each stage (timed by wrapping the stage's function; wrapping adds ~0.1 µs per call), and per detector.
Results print as JSON and go to bench/work/dns_hotpath-<time>.json.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import random
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# --src DIR measures another version's code (e.g. `git archive <commit> src | tar -x -C /tmp/before`)
_SRC = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv[:-1] else str(REPO / "src")
sys.path.insert(0, _SRC)

import yaml  # noqa: E402

from tutela.core.config import load_settings  # noqa: E402
from tutela.core.registry import DetectorRegistry  # noqa: E402
from tutela.core.store import EventWriter  # noqa: E402
from tutela.dns import engine as engine_mod  # noqa: E402
from tutela.dns import server as server_mod  # noqa: E402
from tutela.dns import wire  # noqa: E402
from tutela.dns.engine import DnsEngine  # noqa: E402
from tutela.dns.server import DnsSensor  # noqa: E402

BRANDS = ["paypal.com", "github.com", "google.com", "microsoft.com", "apple.com", "amazon.com", "netflix.com",
          "facebook.com", "instagram.com", "linkedin.com", "dropbox.com", "salesforce.com", "adobe.com",
          "zoom.us", "slack.com", "office.com", "outlook.com", "icloud.com", "chase.com", "wellsfargo.com"]  # fmt: skip


def settle_gc() -> None:
    """What DnsSensor.start() does after warm-up (older versions inline it): long-lived tables out of
    the GC's full passes, fewer collections. Without it GC pauses dominate the timings."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


class Capture:
    """Stands in for a datagram transport: keeps the last packet "sent"."""

    def __init__(self) -> None:
        self.last: bytes | None = None
        self.sent = 0

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.last = data
        self.sent += 1

    def close(self) -> None:
        return


def traffic(
    work: Path, names: int, queries: int, clients: int, seed: int, mix: str = "zipf"
) -> tuple[Path, list[tuple[bytes, Any]]]:
    """The blocklist file and `queries` (packet, client address) pairs, Zipf-like over `names` names
    (mix "zipf") or each a distinct name as in bench/dns_sensor.py's memory run (mix "distinct")."""
    rng = random.Random(seed)
    blocked = [f"ads{i}.tracker{i % 997}.net" for i in range(100_000)]
    hosts = work / "block.hosts"
    hosts.write_text("".join(f"0.0.0.0 {n}\n" for n in blocked))
    addrs = [(f"10.0.{c // 250}.{c % 250 + 1}", 40000 + c) for c in range(clients)]
    if mix == "distinct":
        return hosts, [
            (_with_opt(wire.build_query(f"n{i}.site{i % 2000}.com", wire.A, rng.getrandbits(16))), rng.choice(addrs))
            for i in range(queries)
        ]
    distinct: list[tuple[str, int]] = []
    for i in range(names):
        r = i % 100
        if r < 2:
            distinct.append((blocked[rng.randrange(len(blocked))], wire.A))
        elif r < 3:
            distinct.append(
                (f"{rng.choice(['paypa1', 'gooogle', 'micros0ft', 'amazom', 'netflx'])}{i % 50}.com", wire.A)
            )
        else:
            distinct.append((f"host{i % 37}.site{i % 2000}.com", wire.AAAA if r % 5 == 0 else wire.A))
    rng.shuffle(distinct)
    weights = [1.0 / (rank + 1) for rank in range(len(distinct))]
    picks = rng.choices(distinct, weights=weights, k=queries)
    return hosts, [
        (_with_opt(wire.build_query(name, qtype, rng.getrandbits(16))), rng.choice(addrs)) for name, qtype in picks
    ]


def _with_opt(packet: bytes) -> bytes:
    """dnsperf and stub resolvers add an OPT record; so do these queries (so EDNS parsing is measured)."""
    return packet[:10] + b"\x00\x01" + packet[12:] + b"\x00" + struct.pack("!HHIH", wire.OPT, 1232, 0, 0)


def upstream_answer(forwarded: bytes) -> bytes:
    """What Unbound with `local-zone: "." redirect` answers: the question echoed, one record, EDNS."""
    q = wire.parse_query(forwarded)
    v6 = q.qtype == wire.AAAA
    rdata = bytes.fromhex("20010db8000000000000000000000001") if v6 else bytes([198, 51, 100, 1])
    rtype = wire.AAAA if v6 else wire.A
    head = struct.pack("!HHHHHH", q.id, 0x8180 | (q.flags & 0x0110), 1, 1, 0, 1)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
    return head + forwarded[12 : q.end] + answer + b"\x00" + struct.pack("!HHIH", wire.OPT, 1232, 0, 0)


def config_for(detector_set: str, work: Path, hosts: Path) -> dict[str, Any]:
    """A set name, optionally with "-nocache" (the answer cache off): "issue3", "default-nocache", ..."""
    base, _, variant = detector_set.partition("-")
    cfg = _detector_config(base, work, hosts)
    if variant == "nocache":
        cfg["dns"] = {"answer_cache_size": 0}
    return cfg


def _detector_config(detector_set: str, work: Path, hosts: Path) -> dict[str, Any]:
    if detector_set == "default":
        return {}
    return {
        "detectors": {
            "dns": [
                {"id": "dns.blocklist", "params": {"hosts_files": [str(hosts)]}},
                {"id": "dns.rebinding"},
                {"id": "dns.newly_observed", "params": {"path": str(work / "observed.tsv")}},
                {"id": "dns.lookalike", "params": {"brands": BRANDS}},
                {"id": "dns.nxdomain_burst"},
                {"id": "dns.random_subdomain"},
            ]
        }
    }


class Harness:
    """One sensor (engine, event writer, passive DNS) with capturing transports."""

    def __init__(self, detector_set: str, work: Path, hosts: Path) -> None:
        home = work / f"home-{detector_set}"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["TUTELA_HOME"] = str(home)
        path = home / "config.yaml"
        path.write_text(yaml.safe_dump(config_for(detector_set, work, hosts)))
        registry = DetectorRegistry.load()
        self.settings = load_settings(path, detectors=registry)
        self.writer = EventWriter(self.settings.home, self.settings.store_path, flush_interval=1.0)
        self.writer.start()
        self.engine = DnsEngine.from_settings(self.settings, registry, writer=self.writer)
        self.passive: Any = None
        if self.engine.dns.passive_dns:
            from tutela.dns.takeover.passive import PassiveDnsRecorder

            self.passive = self.engine.passive = PassiveDnsRecorder(self.settings.home, self.settings.store_path)
            self.passive.start()
        self.engine.warmup()
        settle_gc()
        self.sensor = DnsSensor(self.engine, "127.0.0.1:0", ["127.0.0.1:9"])
        self.client = Capture()
        self.upstream = Capture()
        self.sensor._udp = self.client  # type: ignore[assignment]
        self.sensor.upstreams[0].transport = self.upstream  # type: ignore[assignment]
        self._answers: dict[bytes, bytes] = {}
        self.forwarded = 0

    def prepare(self, stream: list[tuple[bytes, Any]]) -> None:
        """Build the upstream answers ahead of time (keyed by question bytes), so they are not timed."""
        for packet, _ in stream:
            q = wire.parse_query(packet)
            key = packet[12 : q.end]
            if key not in self._answers:
                self._answers[key] = upstream_answer(packet)

    def run(self, stream: list[tuple[bytes, Any]]) -> int:
        """Every query through the sensor, each forwarded one answered at once; returns ns spent."""
        sensor, up, answers = self.sensor, self.upstream, self._answers
        on_query, on_upstream = sensor.on_query, sensor.on_upstream
        clock = time.perf_counter_ns
        spent = 0
        for packet, addr in stream:
            up.last = None
            t = clock()
            on_query(packet, addr)
            forwarded = up.last
            if forwarded is not None:
                self.forwarded += 1
                qend = len(packet) - 11  # the question ends where the 11-byte OPT record starts
                response = forwarded[:2] + answers[packet[12:qend]][2:]
                t2 = clock()
                spent += t2 - t
                on_upstream(0, response)
                spent += clock() - t2
            else:
                spent += clock() - t
        return spent

    def close(self) -> None:
        self.engine.close()
        if self.passive is not None:
            self.passive.close()
        self.writer.close()


@contextmanager
def stage_timers(h: Harness, ns: Counter[str], calls: Counter[str]) -> Iterator[None]:
    """Wrap each stage's function (and each detector's detect) with a timer; unwrap afterwards."""
    undo: list[Callable[[], None]] = []

    def wrap(owner: Any, attr: str, label: str, drain: bool = False) -> None:
        fn = getattr(owner, attr, None)
        if fn is None:
            return
        clock = time.perf_counter_ns

        def timed(*a: Any, **k: Any) -> Any:
            t = clock()
            try:
                # detectors may be generators: drain them here, so their work is timed as theirs
                return list(fn(*a, **k)) if drain else fn(*a, **k)
            finally:
                ns[label] += clock() - t
                calls[label] += 1

        had = attr in vars(owner)
        setattr(owner, attr, timed)
        undo.append(lambda: setattr(owner, attr, fn) if had else delattr(owner, attr))

    sensor, engine = h.sensor, h.engine
    wrap(sensor, "on_query", "on_query (total)")
    wrap(sensor, "on_upstream", "on_upstream (total)")
    for mod in (wire, server_mod, engine_mod):
        wrap(mod, "parse_query", "parse_query (full parses)")
        wrap(mod, "parse_answers", "parse_answers")
        wrap(mod, "edns_udp_size", "edns_udp_size")
    wrap(engine, "judge_query", "judge_query")
    wrap(engine, "judge_answer", "judge_answer")
    wrap(engine, "record", "record")
    wrap(engine, "answer", "answer (block/sinkhole)")
    wrap(sensor, "_forward", "forward bookkeeping")
    wrap(sensor, "_deliver", "deliver (response path)")
    wrap(engine.metrics, "observe_latency", "metrics latency")
    if engine.passive is not None:
        wrap(engine.passive, "observe", "passive DNS observe")
    for d in engine.detectors:
        wrap(d, "detect", f"detect {d.id}", drain=True)
    try:
        yield
    finally:
        for fn in reversed(undo):
            fn()


def measure(detector_set: str, args: argparse.Namespace, work: Path, hosts: Path, segments: list[list]) -> dict:
    """Warm up on the first segment; time the next one plainly, the one after with stage timers, the
    last with cProfile. Each segment is a fresh draw from the same mix, so each sees the same steady
    state (mostly verdict-cache hits, some new names), not a replay of names already cached."""
    warm, timed, staged, profiled = segments
    h = Harness(detector_set, work, hosts)
    for seg in segments:
        h.prepare(seg)
    m = h.engine.metrics
    h.run(warm)
    hits0, misses0 = m.verdict_cache_hits(), m.cache_misses
    h.forwarded = 0
    us = h.run(timed) / len(timed) / 1000
    hits, misses = m.verdict_cache_hits() - hits0, m.cache_misses - misses0
    forwarded = h.forwarded / len(timed)
    ns: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    with stage_timers(h, ns, calls):
        h.run(staged)
    profile = None
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(h.run, profiled)
        out = Path(work / f"profile-{detector_set}.txt")
        with out.open("w") as fh:
            pstats.Stats(prof, stream=fh).sort_stats("tottime").print_stats(30)
        profile = out.read_text()
    result = {
        "detectors": [d.id for d in h.engine.detectors],
        "queries": len(timed),
        "forwarded_share": round(forwarded, 3),
        "cache_hit_share": round(hits / max(1, hits + misses), 3),
        "us_per_query": round(us, 2),
        "stages_us_per_query": {
            k: {"us": round(v / len(staged) / 1000, 3), "calls_per_query": round(calls[k] / len(staged), 3)}
            for k, v in sorted(ns.items(), key=lambda kv: -kv[1])
        },
    }
    h.close()
    if profile:
        result["profile_top"] = profile
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--warmup", type=int, default=50_000)
    ap.add_argument("--names", type=int, default=50_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--sets", default="issue3,issue3-nocache,default,default-nocache")
    ap.add_argument("--profile", action="store_true", help="also run cProfile and print its top 30 by tottime")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mix", choices=["zipf", "distinct"], default="zipf", help="distinct: every query a new name")
    ap.add_argument("--src", default=_SRC, help="the src/ directory whose tutela is measured (default: this one)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tutela-dns-hotpath-"))
    n, w = args.queries, args.warmup
    hosts, stream = traffic(work, args.names, w + n * (3 if args.profile else 2), args.clients, args.seed, args.mix)
    segments = [stream[:w], stream[w : w + n], stream[w + n : w + 2 * n], stream[w + 2 * n :]]
    result: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "src": _SRC,
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg(), "python": platform.python_version()},
        "sets": {},
    }
    for detector_set in args.sets.split(","):
        print(f"{detector_set} ...", flush=True)
        res = measure(detector_set, args, work, hosts, segments)
        result["sets"][detector_set] = res
        print(json.dumps({k: v for k, v in res.items() if k != "profile_top"}, indent=1), flush=True)
        if "profile_top" in res:
            print(res["profile_top"], flush=True)
    result["machine"]["loadavg_end"] = os.getloadavg()
    out_dir = REPO / "bench" / "work"
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / f"dns_hotpath-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out_file.write_text(json.dumps(result, indent=2))
    print(f"results in {out_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
