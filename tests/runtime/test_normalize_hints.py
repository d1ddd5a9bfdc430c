"""normalize's cheap hints are necessary conditions of the patterns they stand before (so normalisation is
unchanged), and they do rule out most ordinary prompts (so they are not `True` everywhere).

Texts: every S-Labs validation prompt (as it comes, lower-cased as _stage2 sees it, and folded), every code point
next to the patterns' ASCII characters, generated text (hypothesis) over an alphabet of exactly the characters the
patterns test, and hostile runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela.runtime import datasets as ds
from tutela.runtime import normalize as nz
from tutela.runtime.normalize_hints import maybe_hex, maybe_leet, maybe_spaced

HINTS: list[tuple[Callable[[str], bool], re.Pattern[str]]] = [
    (maybe_hex, nz._HEX_HINT),
    (maybe_leet, nz._LEET_HINT),
    (maybe_spaced, nz._SPACED),
]


def implied(text: str) -> None:
    for hint, pattern in HINTS:
        if pattern.search(text):
            assert hint(text), (hint.__name__, text[:120])


def test_real_prompts(llm_data: Path) -> None:
    rows = ds.slabs("validation", llm_data)
    for text, _ in rows:
        implied(text)
        implied(text.lower())
        implied(nz.normalize(text).folded.text)
    lowered = [t.lower() for t, _ in rows]
    for hint, _ in HINTS:  # the point of a hint: it lets most prompts skip the pattern
        assert sum(map(hint, lowered)) < 0.4 * len(lowered), hint.__name__


def test_every_code_point_beside_the_patterns_characters() -> None:
    for c in map(chr, range(0x110000)):
        for text in (f"a{c}b{c}c", f"{c}1ab", f"x1{c}", f"ab{c}cd{c}ef{c}", f"\\x{c}f", "0123456789abcde" + c):
            implied(text)


_ALPHABET = st.sampled_from([*"aAbBfFgGxXzZ09137@$ .-_*·,:\\\n\t", "é", "日", "٣", "Ⅻ", "ß"])


@settings(max_examples=2000, deadline=None)
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_generated_text(text: str) -> None:
    implied(text)
    implied(text.lower())


@pytest.mark.parametrize(
    "text",
    [
        "i g n o r e",
        "1.2.3",
        "a.b.c",
        "@ $ @",
        "x·y·z",
        "a_b_c",
        "deadbeefdeadbeef",
        "\\x41\\x42",
        "de ad be ef",
        "aa:bb:cc:",
        "pr0mpt",
        "4ll",
        "$$ab",
        "a" * 100_000 + " b c d",
        "1 " * 50_000,
    ],
)
def test_hostile_and_known_matches(text: str) -> None:
    implied(text)
    assert any(pattern.search(text) for _, pattern in HINTS), "each case matches some pattern"
