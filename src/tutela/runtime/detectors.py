"""The runtime pillar's detectors over `TextSubject`: obfuscation, PII, secrets, source code, URLs, SQL.

Every detector reads the shared normalisation of the subject (computed once per scan and kept
in `ScanContext.artefacts`), scans the normalised text and every decoded layer, and reports spans
in the original text. Evidence never contains the matched value: entity, kind, length, and for
layers the encoding. The prompt-injection detector lives in `tutela.runtime.injection`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.features import have
from tutela.core.findings import Finding, Severity, Span
from tutela.core.models import ModelCache
from tutela.runtime.code import find_code
from tutela.runtime.ner import SpacyNer
from tutela.runtime.ner import installed as ner_installed
from tutela.runtime.normalize import Normalized, normalize
from tutela.runtime.person import FAST_SCORER, PersonNer, PersonRecognizer, no_entities
from tutela.runtime.pii import ENTITIES, analyze
from tutela.runtime.secrets import find_secrets
from tutela.runtime.sql import analyze_sql
from tutela.runtime.subjects import TextSubject
from tutela.runtime.urls import find_urls

_ARTEFACT = "runtime.normalized"


def normalized(subject: TextSubject, ctx: ScanContext) -> Normalized:
    """The subject's normalisation, shared by all detectors of one scan."""
    cached = ctx.artefacts.get(_ARTEFACT)
    if cached is not None and cached[0] is subject.text:
        return cached[1]  # type: ignore[no-any-return]
    norm = normalize(subject.text)
    ctx.artefacts[_ARTEFACT] = (subject.text, norm)
    return norm


class _Base:
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "runtime"

    def __init__(self, config: Any, models: ModelCache) -> None:
        self.config = config
        self.models = models


# --- obfuscation --------------------------------------------------------------------------------


class ObfuscationConfig(DetectorConfig):
    report_layers: bool = True


_HIDDEN_RULES = {
    "tag": ("invisible.tag_characters", Severity.HIGH, "Unicode tag characters smuggle hidden text"),
    "zero_width": ("invisible.zero_width", Severity.MEDIUM, "zero-width characters hidden in the text"),
    "bidi": ("invisible.bidi", Severity.MEDIUM, "bidirectional control characters reorder the text"),
    "variation_selector": ("invisible.variation_selector", Severity.MEDIUM, "variation selectors smuggle bytes"),
    "format": ("invisible.format", Severity.LOW, "invisible format characters"),
    "control": ("invisible.control", Severity.LOW, "control characters"),
}


class ObfuscationDetector(_Base):
    id: ClassVar[str] = "runtime.obfuscation"
    categories: ClassVar[tuple[str, ...]] = ("obfuscation",)
    description: ClassVar[str] = "invisible characters (tag block, zero-width, bidi), homoglyphs, encoded layers"
    Config: ClassVar[type[DetectorConfig]] = ObfuscationConfig

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        norm = normalized(subject, ctx)
        by_kind: dict[str, list[tuple[int, int]]] = {}
        for kind, start, end in norm.hidden:
            by_kind.setdefault(kind, []).append((start, end))
        for kind, runs in by_kind.items():
            if kind not in _HIDDEN_RULES:
                continue
            rule, severity, message = _HIDDEN_RULES[kind]
            count = norm.flags.get(kind, len(runs))
            yield Finding.of(
                match=f"{kind}:{count}",
                detector=self.id,
                detector_version=self.version,
                rule=rule,
                category="obfuscation",
                severity=severity,
                confidence=1.0,
                message=f"{message} ({count} characters in {len(runs)} runs)",
                span=Span(runs[0][0], runs[-1][1]),
                evidence={"characters": count, "runs": len(runs), "kind": subject.kind},
            )
        if norm.flags.get("homoglyph"):
            yield self._flag("homoglyph.mixed_script", Severity.LOW, "look-alike letters from other scripts", norm)
        if self.config.report_layers:
            for layer in norm.all_layers():
                yield Finding.of(
                    match=f"{layer.encoding}:{layer.span}",
                    detector=self.id,
                    detector_version=self.version,
                    rule=f"encoding.{layer.encoding}",
                    category="obfuscation",
                    severity=Severity.LOW,
                    confidence=0.8,
                    message=f"{layer.encoding}-encoded text decoded and rescanned",
                    span=Span(*layer.span),
                    evidence={
                        "encoding": layer.encoding,
                        "depth": layer.depth,
                        "decoded_chars": len(layer.normalized.text.text),
                    },
                )

    def _flag(self, rule: str, severity: Severity, message: str, norm: Normalized) -> Finding:
        return Finding.of(
            match=rule,
            detector=self.id,
            detector_version=self.version,
            rule=rule,
            category="obfuscation",
            severity=severity,
            confidence=0.7,
            message=message,
            evidence={"flags": dict(norm.flags)},
        )


# --- PII --------------------------------------------------------------------------------------------

PII_SEVERITY = {"CREDIT_CARD": Severity.HIGH, "US_SSN": Severity.HIGH, "IBAN_CODE": Severity.HIGH}
# A name the recogniser finds without a cue that it is the writer's own ("my name is ...") is LOW: prompts name
# public figures all the time, and a channel that blocks at MEDIUM must not block "Who was Abraham Lincoln?".
# Policies that redact PII still redact it (category pii, any severity).
_BARE_NAME_RULES = frozenset({"pii.person.model", "pii.person.ner"})


class PiiConfig(DetectorConfig):
    entities: tuple[str, ...] = Field(default=ENTITIES, description="Presidio entity names to report")
    min_score: float = Field(0.5, ge=0.0, le=1.0)
    ner: Literal["auto", "spacy", "off", "heuristics"] = Field(
        "off",
        description="PERSON: `off` capitalised words scored by the model without spaCy (the default), `spacy` "
        "spaCy's NER rescored (tutela[ner]), `auto` spacy when installed else off, `heuristics` cue patterns only "
        "(also what `off` does without LightGBM, the runtime extra)",
    )


class PiiDetector(_Base):
    id: ClassVar[str] = "runtime.pii"
    version: ClassVar[str] = "4"  # 4: PERSON from the model without spaCy by default
    categories: ClassVar[tuple[str, ...]] = ("pii",)
    description: ClassVar[str] = (
        "PII with Presidio entity names: email, phone, card (Luhn), IBAN, SSN, IP, name, address"
    )
    Config: ClassVar[type[DetectorConfig]] = PiiConfig

    def __init__(self, config: Any, models: ModelCache) -> None:
        super().__init__(config, models)
        self._ner: Any = None
        # where PERSON comes from besides the cue patterns: "spacy", "model" (no spaCy) or "heuristics" (nowhere)
        self.person_source = "heuristics"
        if config.ner == "spacy" or (config.ner == "auto" and ner_installed()):
            # spaCy's entities rescored by the PERSON recogniser; both load on first use
            self._ner = PersonNer(SpacyNer().entities, PersonRecognizer(models))
            self.person_source = "spacy"
        elif config.ner != "heuristics" and have("lightgbm"):
            # no spaCy: capitalised runs scored by the model trained without spaCy's features (loads on first use);
            # without LightGBM (the runtime extra) the cue patterns alone, as the injection cascade without its encoder
            self._ner = PersonNer(no_entities, PersonRecognizer(models, model=FAST_SCORER))
            self.person_source = "model"
        self._ner_rule = "pii.person.ner" if self.person_source == "spacy" else "pii.person.model"

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        norm = normalized(subject, ctx)
        seen: set[tuple[str, int, int]] = set()
        ner = self._ner.entities if self._ner is not None else None
        for where, view, _ in norm.views():
            for m in analyze(view.text, self.config.entities, self.config.min_score, ner=ner, ner_rule=self._ner_rule):
                start, end = view.original_span(m.start, m.end)
                key = (m.entity, start, end)
                if key in seen:
                    continue
                seen.add(key)
                yield Finding.of(
                    match=view.text[m.start : m.end],
                    detector=self.id,
                    detector_version=self.version,
                    rule=m.rule,
                    category="pii",
                    severity=Severity.LOW
                    if m.rule in _BARE_NAME_RULES
                    else PII_SEVERITY.get(m.entity, Severity.MEDIUM),
                    confidence=m.score,
                    message=f"{m.entity} found" + (f" in {where}-encoded text" if where != "text" else ""),
                    span=Span(start, end),
                    evidence={"entity": m.entity, "length": m.end - m.start, "layer": where},
                )


# --- secrets ---------------------------------------------------------------------------------------


class SecretsConfig(DetectorConfig):
    min_score: float = Field(0.5, ge=0.0, le=1.0)


class SecretsDetector(_Base):
    id: ClassVar[str] = "runtime.secrets"
    categories: ClassVar[tuple[str, ...]] = ("secret",)
    description: ClassVar[str] = "cloud keys, tokens, private keys, JWTs, connection strings, high-entropy passwords"
    Config: ClassVar[type[DetectorConfig]] = SecretsConfig

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        norm = normalized(subject, ctx)
        for where, view, _ in norm.views():
            for s in find_secrets(view.text):
                if s.score < self.config.min_score:
                    continue
                start, end = view.original_span(s.start, s.end)
                severity = Severity.CRITICAL if s.kind == "private_key" else Severity.HIGH
                yield Finding.of(
                    match=view.text[s.start : s.end],
                    detector=self.id,
                    detector_version=self.version,
                    rule=f"secret.{s.kind}",
                    category="secret",
                    severity=severity,
                    confidence=s.score,
                    message=f"{s.kind.replace('_', ' ')} found"
                    + (f" in {where}-encoded text" if where != "text" else ""),
                    span=Span(start, end),
                    evidence={"entity": s.kind.upper(), "length": s.end - s.start, "layer": where},
                )


# --- source code -----------------------------------------------------------------------------------


class SourceCodeConfig(DetectorConfig):
    min_lines: int = Field(3, ge=1)
    min_score: float = Field(0.5, ge=0.0, le=1.0)


class SourceCodeDetector(_Base):
    id: ClassVar[str] = "runtime.source_code"
    categories: ClassVar[tuple[str, ...]] = ("source_code",)
    description: ClassVar[str] = "source code pasted into a prompt or produced in an answer"
    Config: ClassVar[type[DetectorConfig]] = SourceCodeConfig

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        norm = normalized(subject, ctx)
        view = norm.text
        for block in find_code(view.text, self.config.min_lines, self.config.min_score):
            start, end = view.original_span(block.start, block.end)
            yield Finding.of(
                match=view.text[block.start : block.end],
                detector=self.id,
                detector_version=self.version,
                rule=f"code.{block.language}",
                category="source_code",
                severity=Severity.LOW,
                confidence=block.score,
                message=f"{block.lines} lines of {block.language} source code",
                span=Span(start, end),
                evidence={"language": block.language, "lines": block.lines},
            )


# --- URLs -------------------------------------------------------------------------------------------


class UrlConfig(DetectorConfig):
    min_score: float = Field(0.3, ge=0.0, le=1.0)
    use_domain_intel: bool = True


def _domain_intel() -> Any:
    """The DNS pillar's domain intelligence, if installed: through the core registry, never an import."""
    from tutela.core.registry import CAPABILITIES, load_registry

    try:
        reg = load_registry(CAPABILITIES)
        if "domain_intel" not in reg:
            return None
        factory = reg.get("domain_intel")
        return factory() if isinstance(factory, type) or callable(factory) else factory
    except Exception:  # a broken plug-in must not break URL scanning
        return None


def _intel_verdict(intel: Any, host: str) -> tuple[float, list[str]]:
    """Ask the capability about a host. Accepted shapes: `assess(host)`/`lookup(host)`/callable returning
    a mapping with `score` (0..1) and `reasons`, or an iterable of Findings."""
    fn = getattr(intel, "assess", None) or getattr(intel, "lookup", None) or (intel if callable(intel) else None)
    if fn is None:
        return 0.0, []
    try:
        result = fn(host)
    except Exception:
        return 0.0, []
    if not result:
        return 0.0, []
    if isinstance(result, Mapping):
        score = float(result.get("score", 1.0 if result.get("malicious") else 0.0))
        reasons = [str(r) for r in result.get("reasons", ())] or (
            [str(result["category"])] if "category" in result else []
        )
        return min(1.0, max(0.0, score)), reasons
    findings = [f for f in result if isinstance(f, Finding)]
    if findings:
        return max(f.confidence for f in findings), [f"{f.detector}/{f.rule}" for f in findings]
    return 0.0, []


class UrlDetector(_Base):
    id: ClassVar[str] = "runtime.urls"
    categories: ClassVar[tuple[str, ...]] = ("malicious_url", "exfiltration")
    description: ClassVar[str] = "risky URLs (lexical signals, domain intelligence) and markdown-image exfiltration"
    Config: ClassVar[type[DetectorConfig]] = UrlConfig

    def __init__(self, config: Any, models: ModelCache) -> None:
        super().__init__(config, models)
        self._intel: Any = None
        self._intel_loaded = False

    def intel(self) -> Any:
        if not self._intel_loaded and self.config.use_domain_intel:
            self._intel = _domain_intel()
            self._intel_loaded = True
        return self._intel

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        norm = normalized(subject, ctx)
        for where, view, _ in norm.views():
            for sig in find_urls(view.text):
                score, reasons = sig.score, list(sig.reasons)
                intel = self.intel() if sig.host else None
                if intel is not None:
                    iscore, ireasons = _intel_verdict(intel, sig.host)
                    if iscore > 0:
                        score = max(score, iscore)
                        reasons += [f"domain intelligence: {r}" for r in ireasons] or ["domain intelligence"]
                if score < self.config.min_score:
                    continue
                start, end = view.original_span(sig.start, sig.end)
                category = "exfiltration" if sig.exfiltration else "malicious_url"
                severity = Severity.HIGH if score >= 0.8 else Severity.MEDIUM if score >= 0.5 else Severity.LOW
                yield Finding.of(
                    match=sig.url,
                    detector=self.id,
                    detector_version=self.version,
                    rule="url.markdown_image_exfiltration" if sig.exfiltration else "url.lexical",
                    category=category,
                    severity=severity,
                    confidence=round(score, 4),
                    message="; ".join(reasons) or "risky URL",
                    span=Span(start, end),
                    evidence={"host": sig.host, "reasons": reasons, "layer": where},
                )


# --- SQL ----------------------------------------------------------------------------------------------


class SqlConfig(DetectorConfig):
    kinds: tuple[str, ...] = ("output", "prompt", "document")


class SqlDetector(_Base):
    id: ClassVar[str] = "runtime.sql"
    categories: ClassVar[tuple[str, ...]] = ("dangerous_sql",)
    description: ClassVar[str] = "DROP/TRUNCATE, DELETE/UPDATE without WHERE, stacked statements in generated SQL"
    Config: ClassVar[type[DetectorConfig]] = SqlConfig

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        if subject.kind not in self.config.kinds:
            return
        view = normalized(subject, ctx).text
        for issue in analyze_sql(view.text):
            start, end = view.original_span(issue.start, issue.end)
            yield Finding.of(
                match=view.text[issue.start : issue.end],
                detector=self.id,
                detector_version=self.version,
                rule=issue.rule,
                category="dangerous_sql",
                severity=Severity.parse(issue.severity),
                confidence=0.9,
                message=issue.message,
                span=Span(start, end),
                evidence={"statement_chars": issue.end - issue.start},
            )
