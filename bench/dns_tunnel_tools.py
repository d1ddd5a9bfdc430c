"""Tunnel detection per tool, live (issue 4, deliverable 6): real tunnel tools on this machine, through the
real sensor, with a policy that only alerts so each session runs its course.

Run from the repository root, as root (the tunnel clients only query port 53; iodine needs TUN devices and a
network namespace):

    nice .venv/bin/python bench/dns_tunnel_tools.py [--runs 3] [--bytes 65536] [--synthetic 2000] [--out PATH]

For each tool: its server on 127.0.0.1, `tutela dns serve` on port 53 forwarding to it, its client, and
--bytes pushed each way through the tunnel to a TCP echo server. Then, through the same sensor in the same
run, ordinary names: the DNS queries of the shared Zeek and Suricata logs (../shared/data/access/logs) and
--synthetic hostnames under held-out popular domains (Tranco test split, tutela.dns.training.synth).
Each tool runs --runs sessions, each with a fresh sensor; the table shows the median and range over them
(the ordinary rows: over every tool's runs).

Levels are read from the event store the sensor writes (every query is an event: dns.log_allowed): per
query, the `tunnel.query.<level>` finding of dns.tunnel; per session, its `tunnel.session.<level>` finding.
The window reports LOW and MEDIUM only when the level changes and HIGH on every query, so the first query at
each session level and the share of queries at session HIGH are exact; shares at session LOW/MEDIUM are not
given. "Flagged at LOW" counts queries at LOW or above (as the offline evaluation's columns do).

  dns2tcp   Debian's dns2tcpc/dns2tcpd (TCP over DNS, TXT records), client and server on loopback
  iodine    Debian's iodine/iodined (IP over DNS, NULL records); the client runs in its own network
            namespace, reaching the sensor over a veth pair, so that its TUN address and the server's are
            not both local to one stack (the kernel would deliver the echo traffic without the tunnel)

Other tools are listed with the reason they were not run (NOT_RUN). Writes JSON (--out) and a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.dns_models import live  # noqa: E402

from bench.dns_tunnel_tally import QueryRecord, markdown, split_records, tally  # noqa: E402
from bench.report import machine_info  # noqa: E402

LOGS = REPO.parent / "shared" / "data" / "access" / "logs"
TRANCO = REPO.parent / "shared" / "data" / "dns" / "benign" / "tranco_top_50k.csv"
NOT_RUN = {
    "dnscat2": "not packaged by Debian or PyPI (Ruby server, C client from its own repository)",
    "dnstt": "a Go program, not packaged by Debian or PyPI",
    "ozymandns": "Perl scripts, not packaged by Debian or PyPI",
    "tuns": "not packaged by Debian or PyPI",
    "heyoka": "not packaged by Debian (the PyPI 'heyoka' is an unrelated ODE library)",
}
# Alert on every MEDIUM and HIGH finding, block nothing: the whole session reaches the tool's server.
ALERT_ONLY = """dns:
  log_allowed: true
detectors:
  dns:
    - {id: dns.tunnel}
    - {id: dns.dga}
policy:
  dns:
    rules:
      - {detector: "dns.*", rule: "*.high", action: alert}
      - {detector: "dns.*", rule: "*.medium", action: alert}
      - {detector: "dns.*", rule: "*.low", action: allow}
    severity_actions: {medium: alert, high: alert, critical: alert}
"""


# -- ordinary names ---------------------------------------------------------------------------------
def log_queries() -> list[tuple[str, int]]:
    """The distinct (name, qtype) of the shared Zeek and Suricata DNS logs (`tutela dns replay`'s readers)."""
    from tutela.dns.replay import log_queries as read

    zeek = LOGS / "zeek-zat" / "json" / "dns.log"
    return read(([zeek] if zeek.is_file() else []) + sorted((LOGS / "suricata-eve").glob("*.json")))


def synthetic_queries(n: int, seed: int = 4) -> list[tuple[str, int]]:
    """n hostnames under held-out popular domains (the Tranco names of the training's test split), A/AAAA."""
    from tutela.dns.names import NameSplitter
    from tutela.dns.training import synth
    from tutela.dns.training.data import split_of

    split = NameSplitter()
    domains = []
    for line in TRANCO.read_text().splitlines():
        parts = split(line.partition(",")[2])
        if parts.label and split_of("benign:" + parts.label, 0.5, 0.25) == "test":
            domains.append(parts.registrable)
    names = synth.generate("live-tunnel-bench", sorted(set(domains)), n, seed)
    return [(name, 28 if i % 4 == 3 else 1) for i, name in enumerate(names)]


def send_queries(server: str, queries: Sequence[tuple[str, int]], qps: float = 300.0) -> None:
    """Each query once over UDP to server:53, paced; answers are read and dropped (the upstream is a tunnel
    server, which answers names outside its domain with an error or not at all)."""
    import dns.message
    import dns.rdatatype

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        for name, qtype in queries:
            s.sendto(dns.message.make_query(name, dns.rdatatype.RdataType.make(qtype)).to_wire(), (server, 53))
            time.sleep(1 / qps)
            with contextlib.suppress(OSError):
                while True:
                    s.recv(4096)


# -- pushing bytes through a tunnel ---------------------------------------------------------------------
def transfer(host: str, port: int, nbytes: int, timeout: float) -> dict[str, Any]:
    """Send nbytes to an echo server at host:port and read the echo back; what crossed, and how long it took."""
    payload = random.Random(7).randbytes(nbytes)
    sent = echoed = 0
    t0 = time.monotonic()
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=10) as conn:
        conn.settimeout(0.5)
        deadline = t0 + timeout
        while echoed < nbytes and time.monotonic() < deadline:
            if sent < nbytes:
                with contextlib.suppress(TimeoutError):
                    sent += conn.send(payload[sent : sent + 1024])
            with contextlib.suppress(TimeoutError):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                echoed += len(chunk)
    return {"sent": sent, "echoed": echoed, "seconds": round(time.monotonic() - t0, 1)}


# -- one sensor run -----------------------------------------------------------------------------------------
@dataclass
class Run:
    tool: str
    domain: str
    records: list[QueryRecord]
    ordinary: dict[str, list[QueryRecord]]
    moved: dict[str, Any]


def read_events(home: Path) -> list[tuple[str, int, str, list[dict[str, Any]]]]:
    from tutela.core.store import EventStore

    store = EventStore(home / "events.duckdb", home=home)
    _, rows = store.query("SELECT subject, attrs, action, findings FROM events WHERE pillar = 'dns' ORDER BY ts, rowid")
    out = []
    for subject, attrs, action, findings in rows:
        qtype = int(json.loads(attrs or "{}").get("qtype", 0))
        out.append((str(subject), qtype, str(action), json.loads(findings or "[]")))
    return out


@contextlib.contextmanager
def sensor(work: Path, listen_ip: str, upstream_port: int) -> Iterator[Path]:
    home = work / "home"
    config = work / "tutela.yaml"
    config.write_text(ALERT_ONLY)
    env = {**os.environ, "TUTELA_HOME": str(home)}
    with live.process(live.sensor_argv(config, listen_ip, upstream_port), work / "sensor.log", env=env) as proc:
        live.wait_for_dns(listen_ip)
        yield home
        proc.terminate()
        proc.wait(30)


def run_dns2tcp(work: Path, nbytes: int, timeout: float, ordinary: dict[str, list[tuple[str, int]]]) -> Run:
    domain = "tunnel.test"
    listen_ip = f"127.0.0.{random.randint(2, 250)}"
    local_port = live.free_port()
    with (
        live.echo_server() as echo_port,
        live.dns2tcp_server(work, domain, echo_port) as d2t_port,
        sensor(work, listen_ip, d2t_port) as home,
    ):
        with live.process(live.dns2tcp_client(domain, local_port, listen_ip), work / "dns2tcpc.log"):
            time.sleep(1.0)
            moved = transfer("127.0.0.1", local_port, nbytes, timeout)
        for queries in ordinary.values():
            send_queries(listen_ip, queries)
        time.sleep(2.0)
    return _collect("dns2tcp", domain, home, ordinary, moved)


def run_iodine(work: Path, nbytes: int, timeout: float, ordinary: dict[str, list[tuple[str, int]]]) -> Run:
    domain = "iodine.test"
    ns = f"tutela{random.randint(0, 99999)}"
    octet = random.randint(0, 63) * 4
    host_ip, ns_ip = f"10.201.{octet}.1", f"10.201.{octet}.2"
    tun_net = f"10.{random.randint(64, 127)}.{random.randint(0, 255)}.1"
    server_port = live.free_port(socket.SOCK_DGRAM)
    with netns(ns, host_ip, ns_ip), live.echo_server("0.0.0.0") as echo_port:
        server = ["iodined", "-f", "-c", "-P", "tutela-bench", "-l", "127.0.0.1", "-p", str(server_port),
                  f"{tun_net}/27", domain]  # fmt: skip
        client = ["ip", "netns", "exec", ns, "iodine", "-f", "-r", "-P", "tutela-bench", host_ip, domain]
        with (
            live.process(server, work / "iodined.log"),
            sensor(work, host_ip, server_port) as home,
        ):
            with live.process(client, work / "iodine.log"):
                up = _wait_for(work / "iodine.log", "Connection setup complete", 30)
                moved = {"sent": 0, "echoed": 0, "seconds": 0.0, "setup_complete": up}
                if up:
                    moved |= _transfer_in(ns, tun_net, echo_port, nbytes, timeout)
            for queries in ordinary.values():
                send_queries(host_ip, queries)
            time.sleep(2.0)
    return _collect("iodine", domain, home, ordinary, moved)


def _transfer_in(ns: str, host: str, port: int, nbytes: int, timeout: float) -> dict[str, Any]:
    """transfer() run inside network namespace ns (a child process: Python 3.11 has no os.setns)."""
    argv = ["ip", "netns", "exec", ns, sys.executable, __file__, "--transfer", f"{host}:{port}", "--bytes", str(nbytes),
            "--timeout", str(timeout)]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30)
    try:
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"sent": 0, "echoed": 0, "seconds": 0.0, "error": out.stderr[-300:]}


@contextlib.contextmanager
def netns(ns: str, host_ip: str, ns_ip: str) -> Iterator[None]:
    """A network namespace joined to this one by a veth pair (host_ip here, ns_ip there)."""
    veth = ns[-9:]
    steps = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", f"h{veth}", "type", "veth", "peer", "name", f"n{veth}"],
        ["ip", "link", "set", f"n{veth}", "netns", ns],
        ["ip", "addr", "add", f"{host_ip}/30", "dev", f"h{veth}"],
        ["ip", "link", "set", f"h{veth}", "up"],
        ["ip", "-n", ns, "addr", "add", f"{ns_ip}/30", "dev", f"n{veth}"],
        ["ip", "-n", ns, "link", "set", f"n{veth}", "up"],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=10)
        yield
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)  # removes both veth ends


def _wait_for(log: Path, text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def _collect(
    tool: str, domain: str, home: Path, ordinary: dict[str, list[tuple[str, int]]], moved: dict[str, Any]
) -> Run:
    names = {k: {n for n, _ in v} for k, v in ordinary.items()}
    records, sets = split_records(read_events(home), domain, names)
    return Run(tool, domain, records, sets, moved)


def why_not(tool: str) -> str | None:
    """Why tool cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (the client only queries port 53)"
    binaries = {"dns2tcp": ("dns2tcpc", "dns2tcpd"), "iodine": ("iodine", "iodined", "ip")}[tool]
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        return f"{', '.join(missing)} not installed (bash scripts/system-deps.sh)"
    if tool == "iodine":
        return live.tun_problem()
    return None


RUNNERS = {"dns2tcp": run_dns2tcp, "iodine": run_iodine}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tools", default=",".join(RUNNERS))
    ap.add_argument("--runs", type=int, default=3, help="sessions per tool (figures: median and range)")
    ap.add_argument("--bytes", type=int, default=65536, help="bytes pushed each way through each tunnel")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds allowed for one transfer")
    ap.add_argument("--synthetic", type=int, default=2000, help="synthetic ordinary hostnames per run")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "work" / "dns_tunnel_tools.json")
    ap.add_argument("--transfer", help=argparse.SUPPRESS)  # host:port: run transfer() only (inside a netns)
    args = ap.parse_args(argv)
    if args.transfer:
        host, _, port = args.transfer.rpartition(":")
        print(json.dumps(transfer(host, int(port), args.bytes, args.timeout)))
        return 0
    ordinary = {
        "ordinary: Zeek/Suricata log queries": log_queries(),
        "ordinary: synthetic hostnames, held-out popular domains": synthetic_queries(args.synthetic),
    }
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = machine_info()
    rows: dict[str, list[dict[str, Any]] | str] = {}
    runs: dict[str, Any] = {}
    for tool in args.tools.split(","):
        reason = why_not(tool)
        if reason:
            rows[tool] = runs[tool] = reason
            continue
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix=f"tunnel-{tool}-") as tmp:
                os.chmod(tmp, 0o755)  # dns2tcpd chroots there and drops to nobody
                run = RUNNERS[tool](Path(tmp), args.bytes, args.timeout, ordinary)
            result = {"tally": tally(run.records), **run.moved}
            rows.setdefault(tool, []).append(result)  # type: ignore[union-attr]
            record = {**result, "domain": run.domain, "records": [asdict(r) for r in run.records], "ordinary": {}}
            for label, recs in run.ordinary.items():
                rows.setdefault(label, []).append({"tally": tally(recs)})  # type: ignore[union-attr]
                record["ordinary"][label] = {"tally": tally(recs), "records": [asdict(r) for r in recs]}
            runs.setdefault(tool, []).append(record)
    # the tools first, then the ordinary traffic of all their runs, then the tools not run
    rows = {k: v for k, v in rows.items() if k not in ordinary} | {k: rows[k] for k in ordinary if k in rows}
    rows.update(NOT_RUN)
    table = markdown(rows)
    result = {"benchmark": "dns_tunnel_tools", "started": started, "machine": machine,
              "load_average_end": [round(x, 2) for x in os.getloadavg()],
              "command": "python bench/dns_tunnel_tools.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "bytes_each_way": args.bytes, "levels_from": "the sensor's event store (dns.tunnel findings per event)",
              "runs": runs, "not_run": NOT_RUN, "table": table}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"{started}, load {machine['load_average']}, {machine['cpus']} CPUs {machine['cpu']}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
