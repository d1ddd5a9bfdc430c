"""PII detector latency by PERSON path: cue patterns only, the model without spaCy (the default), spaCy + model.

.venv/bin/python bench/runtime_person.py [--n 200] [--rounds 3] [--data /work/shared/data]

Texts: Presidio synthetic sentences of the test templates (short, name-heavy) and ~1,000-character prompts
joined from S-Labs test texts. Per round every text goes through each measure in turn (A/B interleaved per
text, one process): the PII detector with the cue patterns only (`ner: heuristics`, the default before), with
capitalised runs scored by the PERSON model without spaCy (`ner: off`, the default now) and, when the `ner`
extra is installed, with spaCy's entities rescored by the NER path's model (`ner: spacy`); then the whole
default pipeline (`RuntimeScanner`, the default detectors) on the 1,000-character prompts with `ner: heuristics`
and with `ner: off`. The suite reports the median over rounds of each round's p50 / p99. Pinned to one core,
single-threaded.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import package_versions, write_result  # noqa: E402
from bench.runtime_detectors import interleaved, latency_table, prompts, setup  # noqa: E402
from tutela.core.detector import ScanContext  # noqa: E402
from tutela.core.models import ModelCache  # noqa: E402
from tutela.runtime import datasets as ds  # noqa: E402
from tutela.runtime.detectors import PiiDetector  # noqa: E402
from tutela.runtime.ner import installed as ner_installed  # noqa: E402
from tutela.runtime.scanner import DEFAULT_DETECTORS, RuntimeScanner, specs_for  # noqa: E402
from tutela.runtime.subjects import TextSubject  # noqa: E402

PATHS = {
    "cue patterns only (ner: heuristics, before)": "heuristics",
    "PERSON model without spaCy (ner: off, the default)": "off",
    "spaCy + PERSON model (ner: spacy)": "spacy",
}


def main() -> int:
    args, started = setup((__doc__ or "").splitlines()[0], 200)
    base = ds.data_dir(args.data)
    sentences = [r["full_text"] for r in ds.presidio_split(base, "test")][: args.n]
    long = prompts(args.n, base)
    models = ModelCache()
    dets = {
        name: PiiDetector(PiiDetector.Config(ner=mode), models)  # type: ignore[call-arg]
        for name, mode in PATHS.items()
        if mode != "spacy" or ner_installed()
    }
    pipelines = {
        f"whole pipeline, PII {mode}": RuntimeScanner(
            models=models, specs=specs_for(DEFAULT_DETECTORS, {"runtime.pii": {"ner": mode}})
        )
        for mode in ("heuristics", "off")
    }

    def run(det: PiiDetector) -> Callable[[str], Any]:
        return lambda t: list(det.detect(TextSubject(t), ScanContext()))

    measures = {f"{kind}: {name}": (run(d), texts) for kind, texts in (("Presidio sentences", sentences),
                ("1,000-char prompts", long)) for name, d in dets.items()}  # fmt: skip
    for name, scanner in pipelines.items():
        measures[f"1,000-char prompts: {name}"] = (lambda t, s=scanner: s.scan(t, "prompt"), long)  # type: ignore[misc]
    rows, raw = interleaved(measures, args.rounds)
    load = os.getloadavg()
    before = raw["1,000-char prompts: whole pipeline, PII heuristics"]["p50"]["median"]
    after = raw["1,000-char prompts: whole pipeline, PII off"]["p50"]["median"]
    after99 = raw["1,000-char prompts: whole pipeline, PII off"]["p99"]["median"]
    path = write_result(
        "runtime_person",
        started=started,
        title="PII detector: the PERSON paths' cost",
        issue=6,
        command=f".venv/bin/python bench/runtime_person.py --n {args.n} --rounds {args.rounds}",
        target=(
            "the default pipeline stays well under p50 15 ms / p99 50 ms per 1,000-character prompt with the PERSON "
            f"model on (`ner: off`). This run: pipeline p50 {before:.2f} ms before, {after:.2f} ms with it "
            f"({'met' if after <= 15 else 'missed'}); p99 {after99:.2f} ms ({'met' if after99 <= 50 else 'missed'})"
        ),
        about=(__doc__ or "").split("\n\n", 1)[1].strip(),
        tables=[
            latency_table(
                args.rounds,
                rows,
                f"Load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (2 cores shared with "
                "other engineers' jobs): absolute figures drift with it; the interleaving keeps the A/B fair.",
            )
        ],
        not_measured=["several cores or concurrent requests", "texts above 1,000 characters"],
        versions=package_versions(["spacy", "lightgbm", "numpy"]),
        raw=raw,
    )
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
