"""The posture detectors, one per format family, all judging an `Artifact`.

Containers are opened once per scan and shared through `ScanContext.artefacts`, so each
detector only judges the leaves of its own family. Detectors never choose actions; posture's
policy does, and it fails closed. A leaf that cannot be parsed, or that runs past its limits,
becomes a finding here (never a silent pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from tutela.core.detector import ScanContext
from tutela.core.errors import ResourceLimitExceeded
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.posture.artifact import Artifact
from tutela.posture.containers import Expansion, Leaf, expand
from tutela.posture.issues import Issue, limit_exceeded, to_finding, unparsable
from tutela.posture.limits import Budget, ScanLimits
from tutela.posture.sniff import MODEL_SUFFIXES

if TYPE_CHECKING:
    from tutela.core.detector import DetectorConfig

LIMITS_KEY = "posture.limits"


class _NoParams:
    """`Config` of the posture detectors (they take no parameters): core's DetectorConfig, resolved on
    first use, so that scanning with the defaults never imports pydantic."""

    def __get__(self, obj: object, owner: type | None = None) -> type[DetectorConfig]:
        from tutela.core.detector import DetectorConfig

        return DetectorConfig


def expansion_for(subject: Artifact, ctx: ScanContext) -> tuple[Expansion, Budget]:
    """Open the artifact's containers once per scan; later detectors reuse the result."""
    key = ("posture.expansion", id(subject))
    hit = ctx.artefacts.get(key)  # type: ignore[call-overload]
    if hit is not None and hit[0] is subject:
        return hit[1], hit[2]
    limits = ctx.artefacts.get(LIMITS_KEY) or ScanLimits()
    budget = Budget.of(limits)
    exp = expand(subject, budget)
    ctx.artefacts[key] = (subject, exp, budget)  # type: ignore[index]
    return exp, budget


class PostureDetector:
    id: ClassVar[str]
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "posture"
    categories: ClassVar[tuple[str, ...]] = ("code-execution", "malformed", "resource-limit")
    description: ClassVar[str] = ""
    Config: ClassVar[Any] = _NoParams()
    kinds: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: DetectorConfig | None = None, models: ModelCache | None = None) -> None:
        self.config = config  # None: the defaults (there are no parameters)

    def detect(self, subject: Artifact, ctx: ScanContext) -> Iterable[Finding]:
        exp, budget = expansion_for(subject, ctx)
        issues: list[Issue] = []
        for leaf in exp.of_kind(*self.kinds):
            try:
                budget.deadline.check()
                issues.extend(self.scan_leaf(leaf, budget))
            except ResourceLimitExceeded as exc:
                issues.append(limit_exceeded(exc, leaf.artifact.member))
            except Exception as exc:  # hostile input: a parser error is a finding, never a crash
                if leaf.strict:
                    issues.append(unparsable(f"{leaf.kind} data", exc, leaf.artifact.member))
        return [to_finding(i, detector=self.id, version=self.version, path=subject.path) for i in issues]

    def scan_leaf(self, leaf: Leaf, budget: Budget) -> list[Issue]:
        raise NotImplementedError


class PickleDetector(PostureDetector):
    id = "posture.pickle"
    categories = ("code-execution", "file-access", "suspicious-import", "malformed", "resource-limit")
    description = (
        "Pickle streams (plain, PyTorch, joblib, NumPy object arrays, nested): what would be imported "
        "and called on load, judged by per-library allow-lists and a dangerous-call list"
    )
    kinds = ("pickle", "pickle?")

    def scan_leaf(self, leaf: Leaf, budget: Budget) -> list[Issue]:
        from tutela.posture.pickle_scan import scan_pickle

        return scan_pickle(leaf.artifact, budget, strict=leaf.strict)


class ArchiveDetector(PostureDetector):
    id = "posture.archive"
    categories = ("integrity", "malformed", "resource-limit")
    description = "Containers (zip as torch reads it, tar, 7z, gzip, bz2, xz): bombs, depth, inconsistencies"

    def detect(self, subject: Artifact, ctx: ScanContext) -> Iterable[Finding]:
        exp, _ = expansion_for(subject, ctx)
        issues = list(exp.issues)
        for leaf in exp.of_kind("unknown"):
            a = leaf.artifact
            if a.suffix in MODEL_SUFFIXES and a.size > 0:
                issues.append(
                    Issue(
                        "scan.unrecognised-format",
                        Severity.MEDIUM,
                        "malformed",
                        f"{a.suffix} file whose content matches no known model format",
                        a.member,
                    )
                )
        return [to_finding(i, detector=self.id, version=self.version, path=subject.path) for i in issues]


def _simple(
    det_id: str, kinds: tuple[str, ...], description: str, fn: Callable[[Leaf, Budget], list[Issue]]
) -> type[PostureDetector]:
    return type(
        det_id.split(".")[1].title().replace("_", "") + "Detector",
        (PostureDetector,),
        {
            "id": det_id,
            "kinds": kinds,
            "description": description,
            "scan_leaf": lambda self, leaf, budget: fn(leaf, budget),
            "__module__": __name__,
        },
    )


def _keras(leaf: Leaf, budget: Budget) -> list[Issue]:
    from tutela.posture.formats import keras

    return keras.scan_config_json(leaf.artifact) if leaf.kind == "keras-config" else keras.scan_h5(leaf.artifact)


def _tensorflow(leaf: Leaf, budget: Budget) -> list[Issue]:
    from tutela.posture.formats import tensorflow

    return tensorflow.scan_pbtxt(leaf.artifact) if leaf.kind == "tf-pbtxt" else tensorflow.scan_pb(leaf.artifact)


def _onnx(leaf: Leaf, budget: Budget) -> list[Issue]:
    from tutela.posture.formats import onnx

    return onnx.scan(leaf.artifact)


def _gguf(leaf: Leaf, budget: Budget) -> list[Issue]:
    from tutela.posture.formats import gguf

    return gguf.scan(leaf.artifact)


def _safetensors(leaf: Leaf, budget: Budget) -> list[Issue]:
    from tutela.posture.formats import safetensors

    return safetensors.scan(leaf.artifact, budget.limits.max_header_bytes)


def _torchscript(leaf: Leaf, budget: Budget) -> list[Issue]:
    from tutela.posture.formats import torchscript

    return torchscript.scan(leaf.artifact)


KerasDetector = _simple(
    "posture.keras",
    ("keras-config", "h5"),
    "Keras .keras config.json and .h5 model_config: Lambda layers, module references, TFSMLayer",
    _keras,
)
TensorflowDetector = _simple(
    "posture.tensorflow",
    ("tf-pb", "tf-pbtxt"),
    "TensorFlow SavedModel/GraphDef ops that read or write files, run Python or reach the network",
    _tensorflow,
)
OnnxDetector = _simple(
    "posture.onnx", ("onnx",), "ONNX custom operator domains and external data escaping the model folder", _onnx
)
GgufDetector = _simple("posture.gguf", ("gguf",), "GGUF metadata and chat templates (checked statically)", _gguf)
SafetensorsDetector = _simple(
    "posture.safetensors", ("safetensors",), "safetensors header bounds, overlaps, holes and metadata", _safetensors
)
TorchscriptDetector = _simple(
    "posture.torchscript",
    ("torchscript-code",),
    "TorchScript code: Python references, custom op namespaces",
    _torchscript,
)

BUILTIN: tuple[type[PostureDetector], ...] = (
    ArchiveDetector,
    PickleDetector,
    KerasDetector,
    TensorflowDetector,
    OnnxDetector,
    GgufDetector,
    SafetensorsDetector,
    TorchscriptDetector,
)
