"""Batch scoring of names (what `tutela dns score` runs): detector findings + the default policy.

Findings are built by the detectors themselves (one code path with the inline sensor); the action
is the default dns policy's (`tutela.dns.policy`). Per-query only: no session window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tutela.core.findings import Finding
from tutela.core.models import ModelCache
from tutela.core.policy import Policy
from tutela.dns.detectors.dga import DgaConfig, DgaDetector
from tutela.dns.detectors.tunnel import TunnelConfig, TunnelDetector
from tutela.dns.names import MAX_NAME, NameSplitter
from tutela.dns.policy import default_policy
from tutela.dns.scoring import Score


class NameScorer:
    def __init__(self, detector: str = "all", models: ModelCache | None = None, policy: Policy | None = None) -> None:
        if detector not in ("dga", "tunnel", "all"):
            raise ValueError(f"unknown detector {detector!r}")
        models = models or ModelCache()
        self.splitter = NameSplitter()
        self.use_dga = detector in ("dga", "all")
        self.use_tunnel = detector in ("tunnel", "all")
        self.dga = DgaDetector(DgaConfig(cache_size=0), models, self.splitter)
        self.tunnel = TunnelDetector(TunnelConfig(window=False, cache_size=0), models, self.splitter)
        self.policy = policy or Policy(default_policy())

    def score_batch(self, names: Sequence[str]) -> list[dict[str, Any]]:
        clean = [n.strip().rstrip(".").lower() for n in names]
        valid = [i for i, n in enumerate(clean) if n and len(n) <= MAX_NAME and " " not in n]
        parts = [self.splitter(clean[i]) for i in valid]
        dga: dict[int, Score] = {}
        tun: dict[int, Score] = {}
        if self.use_dga:
            judged = [k for k, p in enumerate(parts) if self.dga.judges(p)]
            uniq = list(dict.fromkeys(parts[k].registrable for k in judged))
            by_reg = dict(zip(uniq, self.dga.scorer.dga_many([self.splitter(r) for r in uniq]), strict=True))
            dga = {valid[k]: by_reg[parts[k].registrable] for k in judged}
        if self.use_tunnel:
            judged = [k for k, p in enumerate(parts) if self.tunnel.judges(p)]
            scores = self.tunnel.scorer.tunnel_many([parts[k] for k in judged])
            tun = {valid[k]: s for k, s in zip(judged, scores, strict=True)}
        rows = []
        valid_set = set(valid)
        for i, name in enumerate(names):
            rows.append(self._row(name.strip(), i in valid_set, dga.get(i), tun.get(i)))
        return rows

    def _row(self, name: str, valid: bool, dga: Score | None, tun: Score | None) -> dict[str, Any]:
        if not valid:
            return {"name": name, "score": 0.0, "level": None, "action": "allow", "category": None,
                    "reasons": ["not a DNS name (empty, too long or with spaces)"]}  # fmt: skip
        findings: list[Finding] = []
        reasons: list[str] = []
        best: Score | None = None
        for s in (dga, tun):
            if s is None:
                continue
            if best is None or s.confidence > best.confidence:
                best = s
            if s.level is not None:
                if s.kind == "dga":
                    findings.append(self.dga.finding(s))
                else:
                    findings.append(self.tunnel.query_finding(s, 0))
            if s.level is not None:
                reasons.append(f"{s.kind}: {s.level} ({s.confidence:.3f}): {s.explanation}")
            else:
                reasons.append(f"{s.kind}: none ({s.confidence:.3f})")
        verdict = self.policy.decide(findings)
        row: dict[str, Any] = {
            "name": name,
            "score": round(best.confidence, 4) if best else 0.0,
            "level": best.level if best else None,
            "action": str(verdict.action),
            "category": ("dga" if best.kind == "dga" else "tunnel") if best and best.level else None,
            "reasons": reasons,
        }
        if dga is not None and dga.families:
            row["families"] = [{"family": n, "p": p} for n, p in dga.families]
        return row
