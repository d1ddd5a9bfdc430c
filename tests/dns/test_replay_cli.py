"""Replay (names, Zeek TSV and JSON, pcap), the CLI, and the sensor as a `tutela up` service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rrset
import pytest
import yaml

from tests.dns.conftest import StartSensor
from tests.dns.serve import serve_process
from tests.dns.unbound import free_port, wait_udp
from tutela.cli import main
from tutela.dns.pcap import read_datagrams, write_pcap

pytestmark = pytest.mark.network
REPO = Path(__file__).resolve().parents[2]
STATELESS = [
    {"id": "dns.blocklist", "params": {"deny": ["tracker.example.net", "blocked.example.org"]}},
    {"id": "dns.lookalike", "params": {"brands": ["paypal.com"]}},
    {"id": "dns.rebinding"},
]
NAMES = ["good.example.com", "ads.tracker.example.net", "blocked.example.org", "paypa1.com", "www.example.org",
         "rebind.example.com", "xn--pypal-4ve.com", "router.lan"]  # fmt: skip


def write_config(home: Path, detectors: list[dict[str, Any]], **extra: Any) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump({"detectors": {"dns": detectors}, **extra}))
    return path


def replay_json(
    capsys: pytest.CaptureFixture[str], config: Path, file: Path, *extra: str
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    rc = main(["--config", str(config), "dns", "replay", str(file), "--json", *extra])
    return rc, json.loads(capsys.readouterr().out)


def test_replay_names_gives_the_inline_verdicts(
    upstream: int, start_sensor: StartSensor, tutela_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"], detectors=STATELESS, policy={"rules": [
        {"detector": "dns.lookalike", "action": "block"}]})  # fmt: skip
    inline = {}
    for name in NAMES:
        r = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=s.port, timeout=5)
        inline[name] = "block" if r.rcode() == dns.rcode.NXDOMAIN else "allow"
    names = tmp_path / "names.txt"
    names.write_text("# names\n" + "\n".join(NAMES) + "\n")
    config = write_config(tutela_home, STATELESS, policy={"dns": {"rules": [
        {"detector": "dns.lookalike", "action": "block"}]}})  # fmt: skip
    rc, out = replay_json(capsys, config, names)
    flagged = {f["name"]: f["action"] for f in out["flagged"]}
    replayed = {n: flagged.get(n, "allow") for n in NAMES}
    # a names list has no answers, so the response-side rebinding block is inline only
    assert inline.pop("rebind.example.com") == "block" and replayed.pop("rebind.example.com") == "allow"
    assert replayed == inline
    assert replayed["paypa1.com"] == "block" and replayed["good.example.com"] == "allow"
    assert rc == 1 and out["records"] == len(NAMES)


def test_replay_zeek_tsv_json_and_pcap(tutela_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tutela_home, [*STATELESS, {"id": "dns.nxdomain_burst", "params": {"threshold": 3}}])
    rc, out = replay_json(capsys, config, REPO / "samples" / "dns" / "dns.log")
    by_category: dict[str, set[str]] = {}
    for f in out["flagged"]:
        for finding in f["findings"]:
            by_category.setdefault(finding["category"], set()).add(f["name"])
    assert by_category["rebinding"] == {"rebind-attack.example.com", "metadata.example.net"}
    assert "nxdomain-burst" in by_category
    assert rc == 1 and out["records"] == 332

    rows = [{"query": "rebind.example.com", "qtype": 1, "id.orig_h": "10.0.0.9", "rcode": 0,
             "answers": ["10.0.0.1"], "TTLs": [5.0]},
            {"query": "ads.tracker.example.net", "qtype": 1, "id.orig_h": "10.0.0.9"}]  # fmt: skip
    jlog = tmp_path / "dns.json"
    jlog.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    rc, out = replay_json(capsys, config, jlog)
    assert {(f["name"], f["stage"]) for f in out["flagged"]} == {
        ("rebind.example.com", "response"), ("ads.tracker.example.net", "request")}  # fmt: skip

    q = dns.message.make_query("rebind.example.com", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("rebind.example.com.", 60, "IN", "A", "192.168.7.7"))
    cap = tmp_path / "c.pcap"
    blocked = dns.message.make_query("blocked.example.org", "A").to_wire()
    write_pcap(
        cap,
        [
            ("10.0.0.9", "10.0.0.1", 40000, 53, q.to_wire()),
            ("10.0.0.1", "10.0.0.9", 53, 40000, r.to_wire()),
            ("10.0.0.9", "10.0.0.1", 40001, 53, blocked),
        ],
    )
    assert len(list(read_datagrams(cap))) == 3
    rc, out = replay_json(capsys, config, cap)
    assert {(f["name"], f["stage"], f["action"]) for f in out["flagged"]} == {
        ("rebind.example.com", "response", "block"), ("blocked.example.org", "request", "block")}  # fmt: skip
    assert out["records"] == 3

    broken = tmp_path / "broken.pcap"
    broken.write_bytes(cap.read_bytes()[:60])
    assert main(["--config", str(config), "dns", "replay", str(broken)]) == 2
    assert "truncated" in capsys.readouterr().err


def test_replay_writes_events_with_reasons(
    tutela_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tutela_home, STATELESS)
    names = tmp_path / "n.txt"
    names.write_text("blocked.example.org\nfine.example.com\n")
    assert main(["--config", str(config), "dns", "replay", str(names)]) == 1
    capsys.readouterr()
    assert main(["--config", str(config), "events", "list", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert [e["subject"] for e in events] == ["blocked.example.org"]
    assert events[0]["findings"][0]["detector"] == "dns.blocklist"
    assert "dns.blocklist/list" in events[0]["attrs"]["reasons"][0]


def test_cli_errors_are_one_line(tutela_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dns", "replay", "/nonexistent/file"]) == 2
    assert main(["dns", "serve", "--listen", "nonsense", "--upstream", "127.0.0.1:53"]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "invalid listen address" in err and "Traceback" not in err


def test_serve_process_and_live_top(upstream: int, tutela_home: Path, tmp_path: Path) -> None:
    config = write_config(tutela_home, STATELESS, dns={"top_interval_s": 0.2})
    env = {**os.environ, "TUTELA_HOME": str(tutela_home)}
    output: list[str] = []
    with serve_process(config, tutela_home, upstream, timeout_s=15, output=output) as port:
        for name in ("good.example.com", "blocked.example.org", "blocked.example.org"):
            dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5)
        time.sleep(0.5)
        top = subprocess.run([sys.executable, "-m", "tutela", "--config", str(config), "dns", "top", "--json"],
                             env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
        snap = json.loads(top.stdout)
        assert snap["queries"] >= 4 and ["blocked.example.org", 2] in snap["top_blocked"]
    assert "listening on" in output[0]


def test_tutela_up_starts_the_sensor(upstream: int, tutela_home: Path) -> None:
    port = free_port()
    config = write_config(tutela_home, STATELESS, dns={"upstreams": [f"127.0.0.1:{upstream}"]},
                          services={"dns": {"listen": f"127.0.0.1:{port}"}})  # fmt: skip
    env = {**os.environ, "TUTELA_HOME": str(tutela_home)}
    tutela = [sys.executable, "-m", "tutela", "--config", str(config)]
    up = subprocess.run(
        [*tutela, "up", "--detach", "--only", "dns"], env=env, capture_output=True, text=True, timeout=60
    )
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        r = dns.query.udp(dns.message.make_query("good.example.com", "A"), "127.0.0.1", port=port, timeout=5)
        assert r.answer[0][0].address == "93.184.216.34"
        status = subprocess.run([*tutela, "status", "--json"], env=env, capture_output=True, text=True, timeout=30)
        assert json.loads(status.stdout)[0]["state"] == "running"
    finally:
        subprocess.run([*tutela, "down"], env=env, capture_output=True, timeout=60)


def test_pcapng_reader(tmp_path: Path) -> None:
    import struct

    q = dns.message.make_query("rebind.example.com", "A").to_wire()
    udp = struct.pack("!HHHH", 40000, 53, 8 + len(q), 0) + q
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes([10, 0, 0, 9]), bytes([10, 0, 0, 1])
    )
    frame = b"\x00" * 12 + b"\x08\x00" + ip + udp  # Ethernet

    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 65535))
    epb = block(6, struct.pack("<IIIII", 0, 0, 1_000_000, len(frame), len(frame)) + frame)
    path = tmp_path / "c.pcapng"
    path.write_bytes(shb + idb + epb)
    [d] = list(read_datagrams(path))
    assert (d.src, d.dst, d.sport, d.dport, d.payload) == ("10.0.0.9", "10.0.0.1", 40000, 53, q)


def test_serve_with_two_workers_on_one_port(upstream: int, tutela_home: Path) -> None:
    config = write_config(tutela_home, STATELESS, dns={"top_interval_s": 0.2})
    port = free_port()
    env = {**os.environ, "TUTELA_HOME": str(tutela_home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tutela", "--config", str(config), "dns", "serve", "--listen", f"127.0.0.1:{port}",
         "--upstream", f"127.0.0.1:{upstream}", "--workers", "2"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_udp(port)
        time.sleep(1.0)  # both workers bound
        for i in range(40):  # dnspython picks a new source port each time: the kernel spreads them
            name = "blocked.example.org" if i % 4 == 0 else "good.example.com"
            r = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5)
            assert r.rcode() == (dns.rcode.NXDOMAIN if i % 4 == 0 else dns.rcode.NOERROR)
        time.sleep(0.6)
        snaps = sorted((tutela_home / "run").glob("dns-top-*.json"))
        assert [p.name for p in snaps] == ["dns-top-0.json", "dns-top-1.json"]
        top = subprocess.run([sys.executable, "-m", "tutela", "--config", str(config), "dns", "top", "--json"],
                             env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
        merged = json.loads(top.stdout)
        assert merged["workers"] == 2 and merged["queries"] >= 40
        assert ["blocked.example.org", 10] in merged["top_blocked"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0, out
    assert "worker 0 listening" in out and "worker 1 listening" in out
