"""Export the DGA splits of `tutela train/eval dns` (same code: data.load + train.Sets) as one JSON file,
so the character-level model trains off-line (on a GPU machine without tutela installed) on exactly the
names the LightGBM model and the evaluation use.

    .venv/bin/python scripts/export_dga_splits.py ../shared/data/dns /tmp/dga_splits.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from tutela.dns.names import NameSplitter
from tutela.dns.training import train as T
from tutela.dns.training.cnn_splits import splits_doc, splits_json, splits_sha256
from tutela.dns.training.data import load


def main(root: str, out: str) -> None:
    splitter = NameSplitter()
    data = load(Path(root), splitter)
    doc = splits_doc(data, T.Sets(data, splitter))
    Path(out).write_text(splits_json(doc), encoding="utf-8")
    print(out, splits_sha256(doc))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
