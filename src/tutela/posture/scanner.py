"""The model scanner's Python API: files and folders in, one verdict per file out.

    from tutela.posture.scanner import ModelScanner
    for result in ModelScanner().scan_paths(["model.pt"]):
        print(result.path, result.verdict.action, [f.rule for f in result.verdict.findings])

Files are memory-mapped read-only (never copied, never executed); each top-level file gets its
own time and decompression budget. Posture's policy fails closed: a detector that crashes
blocks the file.
"""

from __future__ import annotations

import mmap
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tutela.core.detector import ScanContext
from tutela.core.findings import Finding, Severity, Verdict
from tutela.core.pipeline import Pipeline
from tutela.core.policy import Policy
from tutela.posture.artifact import Artifact
from tutela.posture.detectors import BUILTIN, LIMITS_KEY, PostureDetector
from tutela.posture.limits import ScanLimits


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    size: int
    seconds: float
    verdict: Verdict


def default_detectors() -> list[Any]:
    """Every registered posture detector (entry points), or the built-ins when not installed."""
    try:
        from tutela.core.registry import DetectorRegistry

        reg = DetectorRegistry.load()
        names = [n for n in reg.names() if n.startswith("posture.")]
        if names:
            from tutela.core.models import ModelCache

            models = ModelCache()
            classes = [reg.get(n) for n in names]
            # Built-in posture detectors take no parameters (and no pydantic import); plugins get their defaults.
            return [k(None, models) if issubclass(k, PostureDetector) else k(k.Config(), models) for k in classes]
    except Exception:  # a broken plugin must not disable the scanner
        pass
    return [d() for d in BUILTIN]


class ModelScanner:
    def __init__(
        self,
        *,
        detectors: Sequence[Any] | None = None,
        policy: Policy | None = None,
        limits: ScanLimits | None = None,
    ) -> None:
        self.limits = limits or ScanLimits()
        self.policy = policy or Policy(on_error="closed")
        self.pipeline: Pipeline[Artifact] = Pipeline(list(detectors or default_detectors()), self.policy)

    def scan_artifact(self, artifact: Artifact) -> Verdict:
        ctx = ScanContext(source="posture.scan-models", artefacts={LIMITS_KEY: self.limits})
        return self.pipeline.run(artifact, ctx)

    def scan_bytes(self, data: bytes, path: str = "<bytes>") -> Verdict:
        return self.scan_artifact(Artifact(data, path))

    def scan_file(self, path: str | Path) -> FileResult:
        p = str(path)
        t0 = time.perf_counter()
        try:
            if not stat.S_ISREG(os.stat(p).st_mode):
                raise OSError(f"{p} is not a regular file")
            with open(p, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size == 0:
                    verdict = self.scan_artifact(Artifact(b"", p))
                else:
                    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                        verdict = self.scan_artifact(Artifact(mm, p))
        except OSError as exc:
            size = 0
            finding = Finding(
                detector="posture.scanner",
                detector_version="1",
                rule="scan.unreadable",
                category="malformed",
                severity=Severity.HIGH,
                confidence=1.0,
                message=f"cannot read file: {exc.strerror or exc}",
                location=p,
                evidence={"member": "", "offset": None},
            )
            verdict = self.policy.decide([finding])
        return FileResult(p, size, time.perf_counter() - t0, verdict)

    def scan_paths(self, paths: Iterable[str | Path]) -> Iterator[FileResult]:
        for path in iter_files(paths):
            yield self.scan_file(path)


def iter_files(paths: Iterable[str | Path]) -> Iterator[str]:
    """Files under the given paths, in a stable order; symlinked folders are not followed."""
    for path in paths:
        p = str(path)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(root, name)
                    if os.path.isfile(full):
                        yield full
        else:
            yield p
