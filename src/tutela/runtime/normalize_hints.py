"""Cheap necessary conditions for normalize's slow patterns, so most texts skip them.

Each `maybe_*` is True whenever its pattern in `tutela.runtime.normalize` would find a match (it may also be
True when the pattern finds none: the caller then runs the pattern as before), so normalisation is unchanged.
They map the text to character classes with one `str.translate` (ASCII in C) and look for a substring, where
the patterns' alternations and lookarounds made the regex engine try every position (40-90 µs per 1,000
characters, most of normalize's time on ordinary prompts). Characters outside the tables (non-ASCII) keep
their code point, so they never equal an ASCII class letter: the patterns match only ASCII there too.
Checked against the patterns on real prompts, generated and hostile text (tests/runtime/test_normalize_hints.py).
"""

from __future__ import annotations


def _classes(spec: dict[str, str]) -> dict[int, str]:
    """A translate table: every ASCII character to ".", except those `spec` puts in a class."""
    table = dict.fromkeys(range(128), ".")
    for chars, cls in spec.items():
        table.update(dict.fromkeys(map(ord, chars), cls))
    return table


_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
# _HEX_HINT: [0-9A-Fa-f]{16} | \\x[0-9A-Fa-f]{2} | ([0-9A-Fa-f]{2}[ :]){3}
_HEX = _classes({_DIGITS + "abcdefABCDEF": "h", " :": "s", "\\": "\\", "x": "x"})
# _LEET_HINT: [a-z][0-9@$]+[a-z] | (?<![a-z0-9])[0-9@$]+[a-z]{2}: both have a leet character before a letter
_LEET = _classes({_LOWER: "a", _DIGITS + "@$": "d"})
# _SPACED: (?<![\w@$])(?:[a-z0-9@$][ .\-_*·,]){2,}[a-z0-9@$](?![\w@$]): "x.x.x" whose first x follows no x
_SPACED = _classes({_LOWER + _DIGITS + "@$": "a", " .-_*,": "s"}) | {ord("·"): "s"}


def maybe_hex(text: str) -> bool:
    u = text.translate(_HEX)
    return "hhhhhhhhhhhhhhhh" in u or "\\xhh" in u or "hhshhshhs" in u


def maybe_leet(text: str) -> bool:
    return "da" in text.translate(_LEET)


def maybe_spaced(text: str) -> bool:
    u = text.translate(_SPACED)
    i = u.find("asasa")
    while i != -1:
        if i == 0 or u[i - 1] != "a":
            return True
        i = u.find("asasa", i + 1)
    return False
