"""The DGA splits of `tutela train/eval dns` as one JSON document, for the character CNN trained
off-line (scripts/export_dga_splits.py writes it; `tutela eval dns` recomputes its sha256 to check that
the leave-family-out results it reads were trained on the same splits)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tutela.dns.scoring import dga_judged
from tutela.dns.training.charset import text_of
from tutela.dns.training.data import DnsData


def splits_doc(data: DnsData, sets: Any) -> dict[str, Any]:
    def txt(parts: Any) -> list[str]:
        return [text_of(p.label, p.suffix) for p in parts]

    return {
        "data_sha256": data.hashes,
        # benign rows used for training/validation: judged names only (as train.dga_training_set)
        "benign": {w: txt([p for p in data.benign[w] + sets.cloud[w] if dga_judged(p)]) for w in ("train", "val")},
        # held-out popular domains as the evaluation scores them: all, with a judged mask (unjudged score 0)
        "benign_test": txt(data.benign["test"]),
        "benign_test_judged": [int(dga_judged(p)) for p in data.benign["test"]],
        "cloud_test": txt(sets.cloud["test"]),
        "dga": {w: {f: txt(v) for f, v in sets.dga[w].items() if v} for w in ("train", "val", "test")},
        # leave-family-out tests on every name of the family (all splits, uncapped), as evaluate.py did
        "dga_all": {
            f: txt([p for w in ("train", "val", "test") for p in data.dga[w].get(f, [])]) for f in data.families()
        },
    }


def splits_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def splits_sha256(doc: dict[str, Any]) -> str:
    return hashlib.sha256(splits_json(doc).encode()).hexdigest()
