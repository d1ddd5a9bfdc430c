"""PII detector latency with the NER backend: spaCy PERSON alone vs spaCy + the PERSON recogniser.

.venv/bin/python bench/runtime_person.py [--n 200] [--rounds 3] [--data /work/shared/data]

Texts: Presidio synthetic sentences of the test templates (short, name-heavy) and ~1,000-character prompts
joined from S-Labs test texts. Per round every text goes through each measure in turn (A/B interleaved per
text, one process): the PII detector with heuristics only (`ner: off`), with spaCy's PERSON entities taken
as they are (the NER path before the recogniser), and with the recogniser (`ner: spacy`, the shipped path).
The suite reports the median over rounds of each round's p50 / p99. Pinned to one core, single-threaded.
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
from tutela.runtime.ner import SpacyNer  # noqa: E402
from tutela.runtime.subjects import TextSubject  # noqa: E402


def main() -> int:
    args, started = setup((__doc__ or "").splitlines()[0], 200)
    base = ds.data_dir(args.data)
    sentences = [r["full_text"] for r in ds.presidio_split(base, "test")][: args.n]
    long = prompts(args.n, base)
    models = ModelCache()
    dets = {
        "heuristics (ner: off)": PiiDetector(PiiDetector.Config(ner="off"), models),  # type: ignore[call-arg]
        "spaCy PERSON as is (before)": PiiDetector(PiiDetector.Config(ner="spacy"), models),  # type: ignore[call-arg]
        "spaCy + PERSON recogniser (ner: spacy)": PiiDetector(PiiDetector.Config(ner="spacy"), models),  # type: ignore[call-arg]
    }
    dets["spaCy PERSON as is (before)"]._ner = SpacyNer()  # the NER path as it was: spaCy's PERSON entities

    def run(det: PiiDetector) -> Callable[[str], Any]:
        return lambda t: list(det.detect(TextSubject(t), ScanContext()))

    measures = {f"{kind}: {name}": (run(d), texts) for kind, texts in (("Presidio sentences", sentences),
                ("1,000-char prompts", long)) for name, d in dets.items()}  # fmt: skip
    rows, raw = interleaved(measures, args.rounds)
    load = os.getloadavg()
    path = write_result(
        "runtime_person",
        started=started,
        title="PII detector with the NER backend: the PERSON recogniser's cost",
        issue=6,
        command=f".venv/bin/python bench/runtime_person.py --n {args.n} --rounds {args.rounds}",
        target="the NER path stays in the range it had (<= ~20 ms per text); `ner: off` unchanged",
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
