"""Regenerate src/tutela/dns/training/words_en.txt from the `wordfreq` package (dev extra), offline.

.venv/bin/python scripts/build_dns_wordlist.py
"""

from __future__ import annotations

import re
from pathlib import Path

import wordfreq

OUT = Path(__file__).resolve().parents[1] / "src" / "tutela" / "dns" / "training" / "words_en.txt"
HEADER = (
    "# English words for DNS lexical features: wordfreq 3.1.1 top_n_list('en', 40000), a-z only,\n"
    "# length 3..14, 3-letter words only from the top 2500. Regenerate: scripts/build_dns_wordlist.py\n"
)


def main() -> None:
    words = []
    for rank, word in enumerate(wordfreq.top_n_list("en", 40000)):
        if not re.fullmatch("[a-z]{3,14}", word) or (len(word) == 3 and rank >= 2500):
            continue
        words.append(word)
    OUT.write_text(HEADER + "\n".join(words) + "\n", encoding="utf-8")
    print(f"{len(words)} words -> {OUT}")


if __name__ == "__main__":
    main()
