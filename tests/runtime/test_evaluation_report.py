"""`tutela eval runtime --only pii`: the PII sections are replaced, the injection sections kept as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tutela.runtime.evaluation import PII_TARGETS, write_report


def _scores(f1: float, support: int) -> dict[str, Any]:
    return {"precision": f1, "recall": f1, "f1": f1, "support": support}


def _pii(source: str) -> dict[str, Any]:
    out: dict[str, Any] = {"_ms_per_text": 1.0, "_person_source": source, "_load": 0.5}
    for ent, target in PII_TARGETS.items():
        out[ent] = {**_scores(0.95, 10), "target_f1": target}
    out["PERSON"] = {**_scores(0.9, 573), "target_f1": 0.8}  # all rows, train rows included
    out["_benign_person"] = {"S-Labs test": {"texts": 300, "with_person": 2}}
    out["_person_by_split"] = {
        "test": {**_scores(0.79, 170), "rows": 268},
        "validation": {**_scores(0.85, 98), "rows": 222},
        "train": {**_scores(0.97, 305), "rows": 510},
    }
    return out


def test_only_pii_replaces_the_pii_sections_alone(tmp_path: Path) -> None:
    report = tmp_path / "runtime.md"
    report.write_text("# Runtime\n\n## Prompt injection, tier `fast`\n\nkept 0.8659\n\n## PII, old\n\nold table\n")
    results = {"only": "pii", "injection": {}, "pii": _pii("model"), "pii_heuristics": _pii("heuristics"),
               "pii_ner": _pii("spacy")}  # fmt: skip
    write_report(results, report)
    text = report.read_text()
    assert text.startswith("# Runtime\n\n## Prompt injection, tier `fast`\n\nkept 0.8659\n\n## PII, the default")
    assert "## PII, heuristics only (`ner: heuristics`, the default before)" in text
    assert "old table" not in text
    # both model paths' PERSON verdicts are on the test templates (0.79: missed), not on all rows (0.9)
    assert (
        text.count(
            "| PERSON, test templates only (268 rows never trained on) | 0.79 | 0.79 | 0.79 | 170 | >= 0.8 | "
            "**missed** |"
        )
        == 2
    )
    assert "| PERSON, train templates (510 rows, trained on: not a result) | 0.97 |" in text
    assert text.count("Benign prompts with any PERSON finding") == 3 and "S-Labs test 2 of 300." in text
    assert "| PERSON, all 1,000 rows (includes the train and validation rows above: not a result) | 0.9 |" in text
