"""The inline miss path was made faster without changing any model output.

`golden/miss_path.json` holds what the detectors gave before that work (commit ba7a05d) on ~2,000 names
drawn deterministically from the shared data (popular, 38 DGA families, tunnels): the DGA and tunnel
probabilities of each name (to 1e-9), and a sha256 over every finding's rule, confidence, message and
evidence (explanations, families), so a change anywhere on the path shows up. Regenerate only when a
model is retrained: `.venv/bin/python -m tests.dns_models.test_equivalence`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.dns.detectors.dga import DgaConfig, DgaDetector
from tutela.dns.detectors.tunnel import TunnelConfig, TunnelDetector
from tutela.dns.subjects import DnsQuery

GOLDEN = Path(__file__).with_name("golden") / "miss_path.json"
# hostile and odd names beside the data: the split, IDNs, symbols, long labels, empty labels
ODD = [
    "", ".", "com", "co.uk", "a..example.com", "xn--bcher-kva.example", "foo.xn--p1ai", "Upper.Example.COM.",
    "a.b.c.d.e.f.g.h.example.co.uk", "x" * 63 + ".com", ("a" * 63 + ".") * 4 + "com", "foo.www.ck", "a.b.kawasaki.jp",
    "q+Z8AnwaBA.hidemyself.org", "_sip._tls.example.com", "1.2.3.4.in-addr.arpa", "host.local", "é.example.com",
    "d1x2y3.cloudfront.net", "abc.s3.amazonaws.com", "a-b--c.example.net", "0123456789abcdef.example.org",
]  # fmt: skip


def sample(data: Path) -> list[str]:
    """Every k-th name of each file, so the sample is spread over the whole data set."""
    out: list[str] = list(ODD)
    tranco = (data / "benign" / "tranco_top_50k.csv").read_text().splitlines()
    out += [line.split(",", 1)[1] for line in tranco[::70]]  # 715
    for f in sorted((data / "dga").glob("*.txt")):
        lines = [x for x in f.read_text().splitlines() if x.strip()]
        out += lines[:: max(1, len(lines) // 18)][:18]  # ~680
    for split in ("train", "validate"):
        lines = (data / "tunneling" / f"{split}.csv").read_text().splitlines()
        out += [line.split(",", 1)[1] for line in lines[:: max(1, len(lines) // 350)][:350]]  # 700
    return list(dict.fromkeys(out))


def observe(names: list[str]) -> dict[str, object]:
    models = ModelCache()
    ctx = ScanContext()
    dga = DgaDetector(DgaConfig(), models)  # built as the sensor builds them: one ModelCache, no splitter
    tunnel = TunnelDetector(TunnelConfig(window=False), models)
    p_dga, p_tunnel = [], []
    digest = hashlib.sha256()
    for name in names:
        p_dga.append(round(dga.score(name).p, 9))
        p_tunnel.append(round(tunnel.score(name).p, 9))
        q = DnsQuery(name)
        for f in (*dga.detect(q, ctx), *tunnel.detect(q, ctx)):
            digest.update(repr((f.rule, f.confidence, f.message, sorted(f.evidence.items()))).encode())
    listed = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return {"names_sha256": listed, "count": len(names), "p_dga": p_dga, "p_tunnel": p_tunnel,
            "findings_sha256": digest.hexdigest()}  # fmt: skip


def test_outputs_unchanged_on_two_thousand_names(data_dir: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    names = sample(data_dir)
    got = observe(names)
    assert got["names_sha256"] == golden["names_sha256"], "the sample changed: the shared data is not the same"
    assert got["count"] >= 2000
    for key in ("p_dga", "p_tunnel"):
        worst = max(abs(a - b) for a, b in zip(got[key], golden[key], strict=True))  # type: ignore[call-overload]
        assert worst <= 1e-6, f"{key} moved by {worst}"
    assert got["findings_sha256"] == golden["findings_sha256"]


def test_detectors_on_one_cache_share_one_splitter() -> None:
    """The sensor builds dns.dga and dns.tunnel with one ModelCache: a new name is split once for both."""
    models = ModelCache()
    dga, tunnel = DgaDetector(DgaConfig(), models), TunnelDetector(TunnelConfig(), models)
    assert dga.scorer.split is tunnel.scorer.split
    assert DgaDetector(DgaConfig(), ModelCache()).scorer.split is not dga.scorer.split


if __name__ == "__main__":
    from tests.dns_models.conftest import DATA

    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(observe(sample(DATA.resolve()))) + "\n")
    print(f"wrote {GOLDEN}")
