"""Scores DNS names with the shipped models: shared by the detectors and `tutela dns score`.

A model gives a probability p. Its metadata carries the thresholds measured on validation data for
each confidence level (LOW / MEDIUM / HIGH = a target false-positive rate on held-out popular
domains). `confidence` maps p onto a common scale, piecewise-linear in log-odds, so that
LOW = 0.5, MEDIUM = 0.7 and HIGH = 0.9 for every model: a policy's `min_confidence: 0.9` means
"at least HIGH", whatever the model's raw calibration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from tutela.core.findings import Severity
from tutela.core.models import ModelCache
from tutela.dns import models as refs
from tutela.dns.charcnn import CharCnn, GatedCnn
from tutela.dns.forest import Forest
from tutela.dns.lexical import Lexicon, explain_dga, explain_tunnel
from tutela.dns.names import NameParts, NameSplitter
from tutela.dns.services import service_remainder
from tutela.dns.splitcache import RegistrableSplitter

LEVELS = ("low", "medium", "high")
LEVEL_CONFIDENCE = {"low": 0.5, "medium": 0.7, "high": 0.9}
LEVEL_SEVERITY = {"low": Severity.INFO, "medium": Severity.MEDIUM, "high": Severity.HIGH}


def dga_judged(parts: NameParts) -> bool:
    """Whether the DGA model judges this name: a registrable label that is not an IDN (xn--) label.

    Punycode looks random to a character model but encodes ordinary Unicode names; DGAs studied here
    never use it. Such names get score 0 with a note, and are left out of training.
    """
    return bool(parts.label) and not parts.label.startswith("xn--")


def _sigmoid(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


class Calibration:
    """Probability -> confidence (0..1) and level, from the per-level thresholds of a model."""

    def __init__(self, thresholds: Mapping[str, float]) -> None:
        knots = [_logit(float(thresholds[lvl])) for lvl in LEVELS]
        for i in range(1, len(knots)):  # thresholds must increase; keep the curve monotone
            knots[i] = max(knots[i], knots[i - 1] + 1e-6)
        self.thresholds = {lvl: float(thresholds[lvl]) for lvl in LEVELS}
        self._x = [knots[0] - 8.0, *knots, knots[-1] + 4.0]
        self._y = [0.0, 0.5, 0.7, 0.9, 1.0]

    def confidence(self, p: float) -> float:
        x = _logit(p)
        xs, ys = self._x, self._y
        if x <= xs[0]:
            return 0.0
        if x >= xs[-1]:
            return 1.0
        for i in range(1, len(xs)):
            if x <= xs[i]:
                return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1])
        return 1.0  # pragma: no cover

    @staticmethod
    def level(confidence: float) -> str | None:
        for lvl in reversed(LEVELS):
            if confidence >= LEVEL_CONFIDENCE[lvl]:
                return lvl
        return None


SERVICE_NOTE = "service lookup (SRV, AD locator, DNS-SD): not judged per query"


def _judged_sub(sub: str) -> str:
    """What the tunnel model reads of a subdomain part: all of it, or a service lookup's free labels ("": nothing)."""
    rest = service_remainder(sub) if sub else None
    return sub if rest is None else rest


def _unjudged_tunnel(sub: str, registrable: str) -> Score:
    return Score("tunnel", registrable, 0.0, 0.0, None, note=SERVICE_NOTE if sub else "no subdomain")


class Score(NamedTuple):
    """Immutable; a NamedTuple for its construction cost on the miss path (see names.NameParts)."""

    kind: str  # "dga" | "tunnel"
    registrable: str
    p: float
    confidence: float
    level: str | None
    features: tuple[float, ...] = ()  # the model's input, kept to explain on demand
    families: tuple[tuple[str, float], ...] = ()
    note: str = ""  # why a name was not judged

    @property
    def explanation(self) -> str:
        """Built only when asked (a finding or a report needs it), not on the inline path."""
        if not self.features:
            return self.note
        return explain_dga(self.features) if self.kind == "dga" else explain_tunnel(self.features)


class _Bundle:
    """The lexicon and forests built once per ModelCache (shared by every detector using it)."""

    def __init__(self, models: ModelCache) -> None:
        self.lexicon: Lexicon = models.derived(refs.LEXICON, "lexicon", Lexicon)
        self._models = models

    def forest(self, ref: Any) -> tuple[Forest, dict[str, Any]]:
        def build(spec: Mapping[str, Any]) -> tuple[Forest, dict[str, Any]]:
            return Forest(spec), dict(spec.get("meta", {}))

        built: tuple[Forest, dict[str, Any]] = self._models.derived(ref, "forest", build)
        return built


def shared_splitter(models: ModelCache) -> NameSplitter:
    """The NameSplitter shared by everything built on `models` (built once per cache, lists loaded lazily): a
    RegistrableSplitter, which splits a new name under a registrable domain already seen without the PSL walk.

    Hung on the smallest DNS model file, which every DNS detector's cache holds anyway: `derived` is the
    cache's once-per-cache construction, and the splitter depends on no model."""
    splitter: NameSplitter = models.derived(refs.DGA_CNN_META, "name-splitter", lambda _meta: RegistrableSplitter())
    return splitter


class DnsScorer:
    """Lazily loads what it needs through the ModelCache; the constructor does no I/O."""

    def __init__(self, models: ModelCache, splitter: NameSplitter | None = None) -> None:
        self.models = models
        self._split = splitter
        self._bundle: _Bundle | None = None
        self._dga: tuple[CharCnn | GatedCnn, Calibration] | None = None
        self._tunnel: tuple[Forest, Calibration] | None = None
        self._family: tuple[Forest, list[str], dict[str, float]] | None = None

    @property
    def split(self) -> NameSplitter:
        """The name splitter: by default one per ModelCache, so dns.dga and dns.tunnel built on one cache (as
        the sensor builds them) split each new name once and share one parsed PSL."""
        if self._split is None:
            self._split = shared_splitter(self.models)
        return self._split

    @property
    def bundle(self) -> _Bundle:
        if self._bundle is None:
            self._bundle = _Bundle(self.models)
        return self._bundle

    @property
    def lexicon(self) -> Lexicon:
        return self.bundle.lexicon

    def _dga_model(self) -> tuple[CharCnn | GatedCnn, Calibration]:
        """The character CNN and its thresholds (the v1 forest, refs.DGA, is no longer served). With a
        `stage2` entry in its metadata (v4), a second CNN runs only on names the first scores at its gate."""
        if self._dga is None:
            cnn: CharCnn | GatedCnn = self.models.derived(refs.DGA_CNN, "charcnn", CharCnn.from_safetensors)
            meta = self.models.get(refs.DGA_CNN_META)
            stage2 = meta.get("stage2")
            if stage2:
                second: CharCnn = self.models.derived(refs.DGA_CNN2, "charcnn", CharCnn.from_safetensors)
                cnn = GatedCnn(cnn, second, float(stage2["gate_logit"]))
            self._dga = (cnn, Calibration(meta["thresholds"]))
        return self._dga

    def _tunnel_model(self) -> tuple[Forest, Calibration]:
        if self._tunnel is None:
            forest, meta = self.bundle.forest(refs.TUNNEL)
            self._tunnel = (forest, Calibration(meta["thresholds"]))
        return self._tunnel

    def _family_model(self) -> tuple[Forest, list[str], dict[str, float]]:
        if self._family is None:
            forest, meta = self.bundle.forest(refs.DGA_FAMILY)
            codes = {s: float(i) for i, s in enumerate(meta["suffixes"])}
            self._family = (forest, list(meta["families"]), codes)
        return self._family

    def warmup(self) -> None:
        self._dga_model()
        self._tunnel_model()[0].compile()
        self._family_model()[0].compile()

    # -- DGA ---------------------------------------------------------------------------------------
    def dga_features(self, parts: NameParts) -> list[float]:
        return self.lexicon.dga_features(parts.label, parts.suffix, parts.private)

    def families(self, parts: NameParts, features: Sequence[float], top: int = 3) -> tuple[tuple[str, float], ...]:
        forest, names, codes = self._family_model()
        proba = forest.proba_one([*features, codes.get(parts.suffix, -1.0)])
        ranked = sorted(zip(names, proba, strict=True), key=lambda kv: -kv[1])[:top]
        return tuple((n, round(p, 3)) for n, p in ranked)

    def dga(self, parts: NameParts, *, families: bool = True, details: bool = True) -> Score:
        """The DGA score of a name. With details=False a flagged name's Score has no features (explanation) and
        no families: the inline path computes them later, with `dga_details`, only where something reads them."""
        if not dga_judged(parts):
            return Score("dga", parts.registrable, 0.0, 0.0, None, note="no registrable label, or an IDN label")
        cnn, cal = self._dga_model()
        p = _sigmoid(cnn.logit_one(parts.label, parts.suffix))
        return self._dga_score(parts, p, cal, families, details)

    def _dga_score(self, parts: NameParts, p: float, cal: Calibration, families: bool, details: bool = True) -> Score:
        """Lexical features (for the explanation) and families are computed only for flagged names."""
        conf = cal.confidence(p)
        level = cal.level(conf)
        s = Score("dga", parts.registrable, p, conf, level)
        return self.dga_details(parts, s, families=families) if details and level is not None else s

    def dga_details(self, parts: NameParts, s: Score, *, families: bool = True) -> Score:
        """`s` (a flagged name's score without details) with the lexical features and the top-3 families."""
        x = self.dga_features(parts)
        fams = self.families(parts, x) if families else ()
        return s._replace(features=tuple(x), families=fams)

    def dga_proba_batch(self, parts: Sequence[NameParts]) -> list[float]:
        """Probabilities only (evaluation, benchmarks); names not judged get 0."""
        import numpy as np

        if not parts:
            return []
        cnn, _cal = self._dga_model()
        logits = cnn.logit_batch([(p.label, p.suffix) for p in parts])
        proba = (1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))).tolist()
        return [v if dga_judged(p) else 0.0 for p, v in zip(parts, proba, strict=True)]

    def dga_many(self, parts: Sequence[NameParts], *, families: bool = True) -> list[Score]:
        """Batch scoring: the network runs once over the batch in numpy."""
        if not parts:
            return []
        _cnn, cal = self._dga_model()
        out = []
        for part, p in zip(parts, self.dga_proba_batch(parts), strict=True):
            if not dga_judged(part):
                out.append(Score("dga", part.registrable, 0.0, 0.0, None, note="no registrable label, or an IDN label"))
                continue
            out.append(self._dga_score(part, p, cal, families))
        return out

    # -- tunnels -----------------------------------------------------------------------------------
    def tunnel(self, parts: NameParts) -> Score:
        return self.tunnel_sub(parts.sub, parts.registrable)

    def tunnel_sub(self, sub: str, registrable: str = "") -> Score:
        """The per-query tunnel score of a subdomain part (the model reads nothing else)."""
        judged = _judged_sub(sub)
        if not judged:
            return _unjudged_tunnel(sub, registrable)
        forest, cal = self._tunnel_model() if self._tunnel is None else self._tunnel
        x = self.lexicon.tunnel_features(judged)
        p = forest.proba_one(x)[0]
        conf = cal.confidence(p)
        return Score("tunnel", registrable, p, conf, cal.level(conf), tuple(x))

    def tunnel_many(self, parts: Sequence[NameParts]) -> list[Score]:
        import numpy as np

        if not parts:
            return []
        forest, cal = self._tunnel_model()
        judged = [_judged_sub(p.sub) for p in parts]
        with_sub = [i for i, sub in enumerate(judged) if sub]
        out = [_unjudged_tunnel(p.sub, p.registrable) for p in parts]
        if with_sub:
            X = [self.lexicon.tunnel_features(judged[i]) for i in with_sub]
            proba = forest.proba_batch(np.asarray(X, dtype=np.float64)).tolist()
            for i, x, p in zip(with_sub, X, proba, strict=True):
                conf = cal.confidence(p)
                out[i] = Score("tunnel", parts[i].registrable, p, conf, cal.level(conf), tuple(x))
        return out
