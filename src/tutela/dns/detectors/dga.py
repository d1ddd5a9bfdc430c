"""`dns.dga`: domain-generation algorithms, judged on the registrable domain (`label.suffix`).

Version 2 scores with a character-level CNN served in numpy (dns/charcnn.py); the lexical features
are computed only for flagged names, for the explanation and the family model, and only when the finding's
message or evidence is read (dns/deferred.py): the verdict needs the score alone.

One finding per query at or above the configured level, with rule `dga.<level>`, severity
INFO (low) / MEDIUM / HIGH, confidence on the common 0..1 scale (0.5 LOW, 0.7 MEDIUM, 0.9 HIGH),
an explanation ("entropy 3.9, no dictionary words, consonant run 7") and the three likeliest
families. Verdicts are cached per registrable domain (bounded LRU), so repeated names cost a lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import Field

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.dns import models as refs
from tutela.dns.deferred import HEAD_FIELDS, DeferredFinding
from tutela.dns.names import NameParts, NameSplitter
from tutela.dns.scoring import LEVEL_CONFIDENCE, LEVEL_SEVERITY, LEVELS, DnsScorer, Score
from tutela.dns.subjects import DnsQuery

Level = Literal["low", "medium", "high"]
_RULES = {level: f"dga.{level}" for level in LEVELS}


class DgaConfig(DetectorConfig):
    min_level: Level = "low"  # findings below this level are not emitted at all
    families: bool = True  # add the three likeliest DGA families to findings
    cache_size: int = Field(65536, ge=0, le=10_000_000)
    ignore_suffixes: tuple[str, ...] = ("arpa", "local", "localhost", "internal", "lan", "home", "corp")


class DgaDetector:
    id: ClassVar[str] = "dns.dga"
    # 2: character CNN (numpy) instead of the lexical-feature forest; 3: the CNN also trains on generic synthetic
    # DGA names (scripts/dga_synth.py), for families never seen in training
    version: ClassVar[str] = "4"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "request"
    categories: ClassVar[tuple[str, ...]] = ("dga",)
    cacheable: ClassVar[bool] = True  # a function of the name alone: the sensor may cache its findings
    description: ClassVar[str] = "Algorithmically generated domains (character and dictionary DGAs), with families"
    Config: ClassVar[type[DetectorConfig]] = DgaConfig

    def __init__(self, config: DgaConfig, models: ModelCache, splitter: NameSplitter | None = None) -> None:
        self.config = config
        self.scorer = DnsScorer(models, splitter)
        self._min_conf = LEVEL_CONFIDENCE[config.min_level]
        self._ignore = frozenset(config.ignore_suffixes)
        # verdicts per registrable domain, shared per ModelCache and size (looked up on first use, see _shared_score)
        self._score: Callable[[str, str, str, bool], Score] | None = None
        # findings per query name: a repeated name costs one lookup (no split, no Finding rebuilt); Findings
        # are frozen, so the same tuple is handed out again
        # (cached or not, chosen once: a hit is one call)
        self._findings = (
            lru_cache(maxsize=config.cache_size)(self._findings_of) if config.cache_size else self._findings_of
        )

    def warmup(self) -> None:
        """Load the PSL and the models before the sensor listens (the first query must not pay for it)."""
        self.scorer.split.warmup()
        self.scorer.warmup()
        self.scorer.dga(self.scorer.split("warmup.example.com"), families=self.config.families)

    def _shared_score(self) -> Callable[[str, str, str, bool], Score]:
        """The verdict cache of every DgaDetector built on this ModelCache with this cache size: dns.dga (request
        side) and dns.dga_session (NXDOMAIN answers) then run the model once per registrable domain. Sound because
        a verdict score is a function of the name and the model alone (no details, so no config read)."""
        size = self.config.cache_size
        shared: Callable[[str, str, str, bool], Score] = self.scorer.models.derived(
            refs.DGA_CNN_META, f"dga-verdicts-{size}", lambda _meta: lru_cache(maxsize=size)(self._score_registrable)
        )
        return shared

    def _score_registrable(self, registrable: str, label: str, suffix: str, private: bool) -> Score:
        # Cached per registrable domain; label, suffix and private are functions of it (the query name's own
        # split gives the same ones as splitting the registrable domain), passed so it is not split again.
        # Without details: a flagged name's explanation and families are computed when its finding is read.
        return self.scorer.dga(
            NameParts(registrable, registrable, label, suffix, private, ""),
            families=self.config.families,
            details=False,
        )

    def judges(self, parts: NameParts) -> bool:
        """False for names without a registrable label or under an ignored top-level suffix."""
        return bool(parts.label) and parts.suffix.rpartition(".")[2] not in self._ignore

    def _verdict_score(self, parts: NameParts) -> Score:
        """The score the verdict needs (probability, confidence, level), without the explanation and families."""
        if not self.judges(parts):
            return Score("dga", parts.registrable, 0.0, 0.0, None, note="not judged")
        score = self._score
        if score is None:
            if not self.config.cache_size:
                return self.scorer.dga(parts, families=self.config.families, details=False)
            score = self._score = self._shared_score()
        return score(parts.registrable, parts.label, parts.suffix, parts.private)

    def forget_verdicts(self) -> None:
        """Empty the verdict cache, which every DgaDetector on this ModelCache shares (benchmarks that time
        misses build detectors on one ModelCache: without this, a new detector would start warm)."""
        if self.config.cache_size:
            self._shared_score().cache_clear()  # type: ignore[attr-defined]

    def verdict_score(self, name: str) -> Score:
        """The verdict score of a name (level None for names not judged), cached per registrable domain; no
        explanation or families (what `score()` adds for a report)."""
        return self._verdict_score(self.scorer.split(name))

    def _explained(self, parts: NameParts, s: Score) -> Score:
        return self.scorer.dga_details(parts, s, families=self.config.families)

    def score(self, name: str) -> Score:
        """The full score of a name: for a flagged one, with its lexical features (explanation) and families."""
        parts = self.scorer.split(name)
        s = self._verdict_score(parts)
        return self._explained(parts, s) if s.level is not None else s

    def detect(self, subject: DnsQuery, ctx: ScanContext) -> Iterable[Finding]:
        return self._findings(subject.name)

    def _findings_of(self, name: str) -> tuple[Finding, ...]:
        parts = self.scorer.split(name)
        s = self._verdict_score(parts)
        if s.level is None or s.confidence < self._min_conf:
            return ()
        return (self.deferred_finding(parts, s),)

    def deferred_finding(self, parts: NameParts, s: Score) -> DeferredFinding:
        """The finding of a flagged name's verdict score: what the policy reads now; the message and evidence
        (explanation, families) when an event, a report or an answer reads them."""
        return DeferredFinding.positional(lambda: self._details(self._explained(parts, s)), *self._head_fields(s))

    def finding(self, s: Score) -> Finding:
        """The finding of a full score (one with its features and families, as `score()` gives)."""
        message, evidence = self._details(s)
        return Finding.of(message=message, evidence=evidence, **self._head(s))

    def _head(self, s: Score) -> dict[str, Any]:
        return dict(zip(HEAD_FIELDS, self._head_fields(s), strict=True))

    def _head_fields(self, s: Score) -> tuple[str, str, str, str, str, Severity, float]:
        """match, detector, detector_version, rule, category, severity, confidence: by position, as
        DeferredFinding.positional takes them (a flagged name builds one on the query path)."""
        level = s.level
        assert level is not None
        return s.registrable, self.id, self.version, _RULES[level], "dga", LEVEL_SEVERITY[level], round(s.confidence, 6)

    def _details(self, s: Score) -> tuple[str, dict[str, str]]:
        fams = ", ".join(f"{n} {p:.2f}" for n, p in s.families)
        explanation = s.explanation  # built from the features on each access: once here
        message = f"{s.registrable} looks algorithmically generated ({explanation})"
        if fams:
            message += f"; likeliest families: {fams}"
        evidence = {
            "registrable": s.registrable,
            "level": str(s.level),
            "probability": f"{s.p:.6f}",
            "explanation": explanation,
            "families": fams,
        }
        return message, evidence
