"""Readers for the evaluation and training data under the shared data folder (never shipped).

The data directory is `$TUTELA_DATA` or the path given by the caller; each reader returns
plain Python lists. Which split is used for what is decided by the training script and by
`tutela.runtime.evaluation`, never here.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import re
from pathlib import Path
from typing import Any

from tutela.core.errors import ConfigError
from tutela.core.features import require

# The shared data sits beside the checkout (../shared/data); only training and evaluation read it.
DEFAULT_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def data_dir(path: str | Path | None = None) -> Path:
    base = Path(path or os.environ.get("TUTELA_DATA") or DEFAULT_DATA)
    if not (base / "llm").is_dir():
        raise ConfigError(f"no llm data under {base}", hint="pass --data DIR or set TUTELA_DATA")
    return base / "llm"


def slabs(split: str, base: Path) -> list[tuple[str, int]]:
    with (base / "prompt_injection" / "slabs" / f"{split}.csv").open(encoding="utf-8", newline="") as fh:
        return [(r["text"], int(r["label"])) for r in csv.DictReader(fh)]


def neuralchemy(split: str, base: Path) -> list[dict[str, Any]]:
    pq = require("pyarrow.parquet", "runtime")
    table = pq.read_table(base / "prompt_injection" / "neuralchemy" / f"core-{split}.parquet")
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def multilingual(base: Path) -> list[str]:
    with (base / "prompt_injection" / "multilingual_attacks" / "prompt_injections.csv").open(encoding="utf-8") as fh:
        return [r["prompt_injections"] for r in csv.DictReader(fh) if r["prompt_injections"].strip()]


def presidio_synth(base: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((base / "pii" / "presidio_synth_dev.json").read_text(encoding="utf-8"))
    return data


def bipia_contexts(base: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for task in ("email", "table", "code"):
        for line in (base / "indirect" / "bipia" / task / "train.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                ctx = row["context"]
                out.append((task, "\n".join(ctx) if isinstance(ctx, list) else str(ctx)))
    return out


def bipia_attacks(base: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name in ("text_attack_train.json", "code_attack_train.json"):
        data = json.loads((base / "indirect" / "bipia" / name).read_text(encoding="utf-8"))
        for category, items in data.items():
            out.extend((category, item) for item in items)
    return out


_PLACEHOLDER = re.compile(r"\{injection_[^}]*\}")


def agentdojo_documents(base: Path, min_chars: int = 80) -> list[str]:
    """Benign text of the AgentDojo environments (emails, files, reviews), injection slots removed."""
    yaml = require("yaml", "runtime")
    docs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            text = _PLACEHOLDER.sub("", node).strip()
            if len(text) >= min_chars:
                docs.append(text)

    for path in sorted((base / "agents" / "suites").rglob("*.yaml")):
        if path.name == "injection_vectors.yaml":
            continue
        try:
            walk(yaml.safe_load(_PLACEHOLDER.sub("", path.read_text(encoding="utf-8"))))
        except yaml.YAMLError:
            continue
    return list(dict.fromkeys(docs))


def split_of(text: str, validation: float = 0.3) -> str:
    h = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "validation" if h < validation else "train"


def split3(key: str, validation: float = 0.2, test: float = 0.3) -> str:
    """train / validation / test by a hash of `key` (a source: a template id, a whole context)."""
    h = int(hashlib.sha256(("split3:" + key).encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test else "validation" if h < test + validation else "train"


def bipia_contexts_split(base: Path, split: str) -> list[tuple[str, str]]:
    """BIPIA contexts of one split (by a hash of the whole context: evaluation contexts are never trained on)."""
    return [(task, c) for task, c in bipia_contexts(base) if split3(c) == split]


def bipia_attacks_split(base: Path, split: str) -> list[tuple[str, str]]:
    """BIPIA attack instructions of one split: per category (5 each), 3 for training, 1 for validation and
    1 for the test, ranked by a hash, so every category is evaluated on instructions never trained on."""
    by_cat: dict[str, list[str]] = {}
    for cat, text in bipia_attacks(base):
        by_cat.setdefault(cat, []).append(text)
    out: list[tuple[str, str]] = []
    for cat, items in by_cat.items():
        ranked = sorted(items, key=lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest())
        n = len(ranked)
        n_test, n_val = max(1, n // 5), max(1, n // 5)
        parts = {
            "test": ranked[:n_test],
            "validation": ranked[n_test : n_test + n_val],
            "train": ranked[n_test + n_val :],
        }
        out.extend((cat, t) for t in parts[split])
    return out


def presidio_split(base: Path, split: str) -> list[dict[str, Any]]:
    """Presidio synthetic sentences of one split, by template (evaluation templates are never trained on)."""
    return [r for r in presidio_synth(base) if split3(f"template:{r['template_id']}") == split]


def embed(document: str, attack: str, rng: random.Random, min_prefix: int = 0) -> tuple[str, int, int]:
    """Insert `attack` into `document` at a sentence or line boundary; return text and the attack's span."""
    cuts = [m.end() for m in re.finditer(r"[.!?]\s+|\n", document) if m.end() >= min_prefix] or [len(document)]
    at = rng.choice(cuts)
    sep = "\n" if rng.random() < 0.5 else " "
    text = document[:at] + sep + attack + sep + document[at:]
    start = at + len(sep)
    return text, start, start + len(attack)
