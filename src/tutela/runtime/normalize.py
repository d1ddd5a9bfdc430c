"""Normalisation before every text detector: undo the evasions that pass plain classifiers.

`normalize(text)` returns a `Normalized` with two views of the text and the encoded layers in it:

  text    NFKC, invisible characters removed (zero-width, bidi controls, variation selectors,
          other format/control characters), Unicode tag characters decoded to the ASCII they
          smuggle, combining-mark noise dropped, confusables (Cyrillic/Greek look-alikes) folded
          to Latin in Latin words. Case and digits are kept: PII and secret detectors read this.
  folded  `text` lower-cased, with letters spaced out ("i g n o r e", "i.g.n.o.r.e") joined and
          leetspeak ("1gn0r3", "pr0mpt") undone. Injection and topic detectors read this.
  layers  base64, hex, URL-encoded and rot13 segments, decoded (two levels deep at most) and
          normalised again, so detectors rescan what was hidden.

Every view carries an offset map, so a span found in any view maps back to the original text
(`View.original_span`); a span inside a decoded layer maps to the whole encoded segment.
`flags` counts what was undone; `hidden` lists the runs of invisible characters by kind, and
`hidden_views()` gives each run of text decoded from tag characters as views of its own.
Bounded: text beyond `max_chars` is not normalised, decoded layers are limited in number,
depth and size.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

from tutela.runtime.normalize_hints import maybe_hex, maybe_leet, maybe_spaced

MAX_CHARS = 200_000
MAX_LAYERS = 16
MAX_DEPTH = 2
MAX_DECODED = 64_000

# --- invisible characters -------------------------------------------------------------------
ZERO_WIDTH = frozenset(
    (0x200B, 0x200C, 0x200D, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF, 0x00AD, 0x180E, 0x034F)
) | frozenset((0x115F, 0x1160, 0x3164, 0xFFA0, 0x17B4, 0x17B5))  # Hangul fillers, Khmer inherent vowels
BIDI = frozenset([0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F, 0x061C])
TAG_FIRST, TAG_LAST = 0xE0000, 0xE007F


def _is_variation_selector(cp: int) -> bool:
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF


# --- confusables: the common look-alikes of Latin letters (subset of Unicode confusables.txt) ---
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "һ": "h", "ӏ": "l", "ɡ": "g", "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O",
    "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D", "Ԛ": "Q",
    "Ԝ": "W", "Ү": "Y", "ү": "y", "Ғ": "F", "ԍ": "G",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "ϲ": "c", "ϳ": "j", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K",
    "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin extensions, Armenian, Cherokee and symbols that render like ASCII letters
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʏ": "y", "ᴀ": "a", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ᴋ": "k",
    "ᴍ": "m", "ᴏ": "o", "ᴘ": "p", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z", "ʀ": "r", "ɢ": "g",
    "ʜ": "h", "ʟ": "l", "ɴ": "n", "օ": "o", "ս": "u", "ո": "n", "ց": "g", "հ": "h", "ɪ": "i", "Ꭺ": "A",
    "Ꭼ": "E", "Ꮋ": "H", "Ꭵ": "i", "Ꮃ": "W", "Ꮪ": "S", "Ꭲ": "T", "ℓ": "l", "∕": "/", "‚": ",", "ǀ": "l",
}  # fmt: skip

LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s"}
_LEET_TABLE = str.maketrans(LEET)
_SPACED = re.compile(r"(?<![\w@$])(?:[a-z0-9@$][ .\-_*·,]){2,}[a-z0-9@$](?![\w@$])")
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class View:
    """A derived text and, for each of its characters, the range it came from in the original."""

    text: str
    starts: tuple[int, ...] | None = None  # None: identity map shifted by `base`
    ends: tuple[int, ...] | None = None
    base: int = 0
    fixed: tuple[int, int] | None = None  # every character maps to this span (decoded layers)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map [start, end) of this view to the original text."""
        if self.fixed is not None:
            return self.fixed
        n = len(self.text)
        start = min(max(start, 0), n)
        end = min(max(end, start), n)
        if self.starts is None or self.ends is None:
            return self.base + start, self.base + end
        if start == end:
            pos = self.starts[start] if start < n else (self.ends[n - 1] if n else 0)
            return pos, pos
        return self.starts[start], self.ends[end - 1]


@dataclass(frozen=True, slots=True)
class Layer:
    """An encoded segment that decoded to text: its encoding, where it is, and its normalisation."""

    encoding: str  # "base64", "hex", "url", "rot13"
    span: tuple[int, int]  # in the original text
    depth: int
    normalized: Normalized


@dataclass(frozen=True, slots=True)
class Normalized:
    original: str
    text: View
    folded: View
    flags: Counter[str] = field(default_factory=Counter)
    hidden: tuple[tuple[str, int, int], ...] = ()  # (kind, start, end) runs of invisible characters
    layers: tuple[Layer, ...] = ()
    truncated: bool = False
    hidden_ranges: tuple[tuple[int, int], ...] = ()  # [start, end) of `text` decoded from tag characters

    def hidden_views(self) -> list[tuple[View, View]]:
        """(text view, folded view) of each run of text decoded from tag characters, on its own: a message
        hidden after benign visible text is scored without that text, and its spans map to the tag characters."""
        out: list[tuple[View, View]] = []
        view = self.text
        for a, b in self.hidden_ranges:
            if view.starts is not None and view.ends is not None:
                sub = View(view.text[a:b], view.starts[a:b], view.ends[a:b], fixed=view.fixed)
            else:
                sub = View(view.text[a:b], base=view.base + a, fixed=view.fixed)
            out.append((sub, _stage2(sub, Counter())))
        return out

    def views(self) -> list[tuple[str, View, View]]:
        """Every (where, text view, folded view) to scan: the text itself, then each decoded layer."""
        out: list[tuple[str, View, View]] = [("text", self.text, self.folded)]
        for layer in self.all_layers():
            out.append((layer.encoding, layer.normalized.text, layer.normalized.folded))
        return out

    def all_layers(self) -> list[Layer]:
        out: list[Layer] = []
        for layer in self.layers:
            out.append(layer)
            out.extend(layer.normalized.all_layers())
        return out

    @property
    def obfuscated(self) -> bool:
        return bool(self.flags) or bool(self.layers)


# --- stage 1: characters ------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _stage1(text: str, flags: Counter[str], hidden: list[tuple[str, int, int]], tagged: list[tuple[int, int]]) -> View:
    """The text view; `hidden` gets the runs of invisible characters (original offsets), `tagged` the runs
    of the view decoded from tag characters (view offsets)."""
    if text.isascii() and not _CONTROL.search(text):
        return View(text)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    run_kind = ""
    run_start = 0
    latin = other = 0
    for i, c in enumerate(text):
        cp = ord(c)
        kind = ""
        if cp < 0x80:
            if cp < 0x20 and c not in "\t\n\r":
                kind = "control"
            else:
                out.append(c)
                starts.append(i)
                ends.append(i + 1)
                if c.isalpha():
                    latin += 1
        elif TAG_FIRST <= cp <= TAG_LAST:
            kind = "tag"
            if 0xE0020 <= cp <= 0xE007E:  # tag characters spell ASCII invisibly: surface it
                if tagged and tagged[-1][1] == len(out):
                    tagged[-1] = (tagged[-1][0], len(out) + 1)
                else:
                    tagged.append((len(out), len(out) + 1))
                out.append(chr(cp - TAG_FIRST))
                starts.append(i)
                ends.append(i + 1)
        elif cp in ZERO_WIDTH:
            kind = "zero_width"
        elif cp in BIDI:
            kind = "bidi"
        elif _is_variation_selector(cp):
            # FE0E/FE0F only pick text or emoji presentation; runs of the others smuggle bytes
            kind = "variation_selector" if cp not in (0xFE0E, 0xFE0F) else "presentation"
        else:
            cat = unicodedata.category(c)
            if cat == "Cf" or cat == "Cc":
                kind = "format"
            elif cat == "Mn" and out and out[-1].isascii() and out[-1].isalpha():
                kind = "combining"
            else:
                norm = unicodedata.normalize("NFKC", c) if not c.isspace() else " "
                if norm != c and c not in ("\u00a0",):
                    flags["nfkc"] += 1
                for ch in norm:
                    out.append(ch)
                    starts.append(i)
                    ends.append(i + 1)
                    if ch.isalpha():
                        if ch.isascii():
                            latin += 1
                        else:
                            other += 1
        if kind:
            flags[kind] += 1
            if kind != run_kind:
                if run_kind:
                    hidden.append((run_kind, run_start, i))
                run_kind, run_start = kind, i
        elif run_kind and not (TAG_FIRST <= cp <= TAG_LAST):
            hidden.append((run_kind, run_start, i))
            run_kind = ""
    if run_kind:
        hidden.append((run_kind, run_start, len(text)))
    joined = "".join(out)
    joined = _fold_confusables(joined, latin >= other, flags)
    return View(joined, tuple(starts), tuple(ends))


def _fold_confusables(text: str, latin_majority: bool, flags: Counter[str]) -> str:
    if text.isascii():
        return text
    chars = list(text)
    for m in _WORD.finditer(text):
        word = m.group()
        if word.isascii():
            continue
        has_ascii = any(c.isascii() for c in word)
        if not (has_ascii or latin_majority):
            continue
        folded = 0
        for k, c in enumerate(word):
            rep = CONFUSABLES.get(c)
            if rep is not None:
                chars[m.start() + k] = rep
                folded += 1
        if folded and (has_ascii or folded == len(word)):
            flags["homoglyph"] += folded
    return "".join(chars)


# --- stage 2: the folded view ----------------------------------------------------------------


def _stage2(view: View, flags: Counter[str]) -> View:
    text = view.text.lower()
    if len(text) != len(view.text):  # a few characters lower-case to two; keep the map exact
        text = "".join(c.lower()[0] for c in view.text)
    starts = list(view.starts) if view.starts is not None else None
    ends = list(view.ends) if view.ends is not None else None
    # runs of single characters with at least two letters: "i g n o r e"; not "2.1.0", "1, 2, 3", IP addresses
    runs = [m for m in _SPACED.finditer(text) if sum(c.isalpha() for c in m.group()) >= 2] if maybe_spaced(text) else []
    if runs:
        keep: list[int] = []
        pos = 0
        for m in runs:
            keep.extend(range(pos, m.start()))
            keep.extend(range(m.start(), m.end(), 2))  # the letters; the separators go
            pos = m.end()
            flags["spaced"] += 1
        keep.extend(range(pos, len(text)))
        text = "".join(text[k] for k in keep)
        base_starts = starts if starts is not None else [view.base + k for k in range(len(view.text))]
        base_ends = ends if ends is not None else [view.base + k + 1 for k in range(len(view.text))]
        starts = [base_starts[k] for k in keep]
        ends = [base_ends[k] for k in keep]
    text = _deleet(text, flags)
    if starts is None:
        return View(text, base=view.base, fixed=view.fixed)
    return View(text, tuple(starts), tuple(ends or ()), fixed=view.fixed)


def _deleet(text: str, flags: Counter[str]) -> str:
    """Undo leetspeak ("1gn0r3 4ll pr3v10u5 rul35") without touching years, prices, versions or identifiers.

    Each token of letters and leet characters is judged by its shape (`_leet_kind`). Strong tokens (a
    leet digit between letters, leet runs at both ends, leet digits before a word that is not a unit) are
    always undone. The ambiguous ones ("7h3", "r007": one leet run at an end, like "gpt4" or "win10";
    units like "1s", "10am"; numbers that spell a function word, "15") are undone only when the text is
    written in leetspeak: a strong token and at least one more leet-like token, and leet-like tokens at
    least 1 in `_LEET_SHARE` of all its tokens (not one identifier in a paragraph). Every replacement is
    one character for one, so the offset map stays exact."""
    if not (maybe_leet(text) and _LEET_HINT.search(text)):
        return text
    found: dict[str, list[re.Match[str]]] = {"strong": [], "weak": [], "unit": [], "number": [], "": []}
    for m in _LEET_CANDIDATE.finditer(text):  # only tokens with a leet character: most tokens have none
        found[_leet_kind(m.group())].append(m)
    if not found["strong"]:
        return text
    fix = found["strong"]
    evidence = len(found["strong"]) + len(found["weak"])
    if evidence >= 2 and evidence * _LEET_SHARE >= len(_LEET_TOKEN.findall(text)):
        fix = fix + found["weak"] + found["unit"] + found["number"]
    chars = list(text)
    for m in fix:
        chars[m.start() : m.end()] = m.group().translate(_LEET_TABLE)
    flags["leet"] += len(fix)
    return "".join(chars)


def _leet_kind(tok: str) -> str:
    """How a token reads as leetspeak: "strong", "weak", "unit", "number" (see `_deleet`) or "" (it does not)."""
    if not _LETTER.search(tok):
        return "number" if len(tok) <= 3 and tok.translate(_LEET_TABLE) in _LEET_NUMBER_WORDS else ""
    if _NOT_LEET.search(tok) or (len(tok) >= 7 and _HEXISH.fullmatch(tok)):
        return ""
    if _UNIT.fullmatch(tok):  # "10am", "3rd", "5g"; but "1s", "1n" are leet for "is", "in"
        return "unit" if sum(c.isdigit() for c in tok) <= 2 else ""
    if _INNER_LEET.search(tok) or _BOTH_ENDS.fullmatch(tok) or _LEET_PREFIX.fullmatch(tok):
        return "strong"
    return "weak"


_LEET_HINT = re.compile(r"[a-z][0-9@$]+[a-z]|(?<![a-z0-9])[0-9@$]+[a-z]{2}")
_LEET_TOKEN = re.compile(r"[a-z0-9@$]+")
_LEET_CANDIDATE = re.compile(r"(?<![a-z0-9@$])[a-z]*[0-9@$][a-z0-9@$]*")
_LETTER = re.compile(r"[a-z]")
_LEET_SHARE = 10
# a digit no leetspeak uses for a letter ("h264", "sha256", "b2b", "x86"), or six digits in a row (IBANs, ids)
_NOT_LEET = re.compile(r"[26]|[0-9]{6}")
_HEXISH = re.compile(r"[0-9a-f]+")  # hashes, ids and colours
_INNER_LEET = re.compile(r"[a-z][0-9]+[a-z]")  # "pr0mpt", "1gn0r3"; not "@"/"$" (e-mail addresses, $vars)
_BOTH_ENDS = re.compile(r"[0-9@$]+[a-z]+[0-9@$]+")  # "7h3", "53cr37"
_UNIT = re.compile(
    r"[0-9]+(?:st|nd|rd|th|s|am|pm|k|m|b|g|d|p|x|h|kb|mb|gb|tb|ms|ns|px|em|pt|fps|hz|khz|mhz|ghz|kg|mg|km|cm|mm"
    r"|ml|min|mins|sec|secs|hr|hrs|yr|yrs|bit|bits|mp|ft|in|lb|lbs|oz|mph|kw|kwh|w|v|mah|gen|day|days)"
)
_LEET_PREFIX = re.compile(r"[0-9@$]+[a-z]{2,}")  # "4ll", "7xt" (units ruled out above)
_LEET_NUMBER_WORDS = frozenset(("a", "i", "is", "it", "to", "at", "as", "so", "its", "ai", "too", "set", "see"))

# --- layers ------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_B64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = re.compile(
    r"(?<![0-9A-Fa-f])(?:0x)?(?:[0-9A-Fa-f]{2}){8,}(?![0-9A-Fa-f])"
    r"|(?:\\x[0-9A-Fa-f]{2}){4,}"
    r"|(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]){7,}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])"
)
# cheap pre-checks: most text has no hex run and no rot13 words, and the full patterns are slow
_HEX_HINT = re.compile(r"[0-9A-Fa-f]{16}|\\x[0-9A-Fa-f]{2}|[0-9A-Fa-f]{2}[ :][0-9A-Fa-f]{2}[ :][0-9A-Fa-f]{2}[ :]")
_ROT13_WORDS = (" gur ", " naq ", " lbh ", " vtaber ", " nyy ", " bs ", " gb ", " vf ", " sbe ", " lbhe ", " zr ")
_URLENC = re.compile(r"[^\s\"'<>]*(?:%[0-9A-Fa-f]{2}[^\s\"'<>%]*){3,}")
_SEGMENT = re.compile(r"[^.!?:;\n]+[.!?:;\n]?")
_ALPHA_WORD = re.compile(r"[A-Za-z]+")
COMMON_WORDS = _words(
    "the be to of and a in that have i it for not on with he as you do at this but his by from they we say her "
    "she or an will my one all would there their what so up out if about who get which go me when make can like "
    "time no just him know take people into year your good some could them see other than then now look only "
    "come its over think also back after use two how our work first well way even new want because any these "
    "give day most us is are was were been has had did does ignore previous instructions instruction prompt system "
    "tell reveal forget rules say print output password secret now please write answer above below all"
)


_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM"
)


def _printable_ratio(s: str) -> float:
    if not s:
        return 0.0
    ok = sum(1 for c in s if c.isprintable() or c in "\n\r\t")
    return ok / len(s)


def _looks_textual(s: str) -> bool:
    if len(s) < 6 or _printable_ratio(s) < 0.9:
        return False
    letters = sum(c.isalpha() for c in s)
    return letters >= max(3, len(s) // 3)


def _try_base64(token: str) -> str | None:
    if token.isdigit() or (token.isalpha() and (token.islower() or token.isupper())):
        return None
    if re.fullmatch(r"[0-9A-Fa-f]+", token):
        return None
    raw = token.rstrip("=")
    pad = "=" * (-len(raw) % 4)
    try:
        data = base64.b64decode(raw + pad, altchars=b"-_" if ("-" in raw or "_" in raw) else None, validate=True)
        s = data.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return s if _looks_textual(s) else None


def _try_hex(token: str) -> str | None:
    digits = re.sub(r"\\x|0x|[ :]", "", token)
    try:
        s = bytes.fromhex(digits).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return s if _looks_textual(s) else None


def _try_url(token: str) -> str | None:
    try:
        s = urllib.parse.unquote(token, errors="strict") if "%" in token else token
    except UnicodeDecodeError:  # percent-escapes that are not UTF-8: not a text layer
        return None
    return s if s != token and _looks_textual(s) else None


def _common_hits(s: str) -> int:
    return sum(1 for w in _ALPHA_WORD.findall(s.lower()) if w in COMMON_WORDS)


def _find_layers(view: View, depth: int, budget: list[int], original: str) -> list[Layer]:
    text = view.text
    found: list[tuple[str, int, int, str]] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    for m in _HEX.finditer(text) if maybe_hex(text) and _HEX_HINT.search(text) else ():
        s = _try_hex(m.group())
        if s:
            found.append(("hex", m.start(), m.end(), s))
            taken.append((m.start(), m.end()))
    for m in _B64.finditer(text):
        if not free(m.start(), m.end()):
            continue
        s = _try_base64(m.group())
        if s:
            found.append(("base64", m.start(), m.end(), s))
            taken.append((m.start(), m.end()))
    if "%" in text:
        for m in _URLENC.finditer(text):
            if free(m.start(), m.end()):
                s = _try_url(m.group())
                if s:
                    found.append(("url", m.start(), m.end(), s))
                    taken.append((m.start(), m.end()))
    low = f" {text.lower()} "
    rot13_hint = sum(low.count(w) for w in _ROT13_WORDS) >= 2
    for m in _SEGMENT.finditer(text) if rot13_hint else ():
        seg = m.group()
        words = _ALPHA_WORD.findall(seg)
        if len(words) < 4 or not free(m.start(), m.end()):
            continue
        hits = sum(1 for w in words if w.lower() in COMMON_WORDS)
        if hits * 3 >= len(words):  # already plain English
            continue
        rot_hits = sum(1 for w in words if w.lower().translate(_ROT13) in COMMON_WORDS)
        if rot_hits >= 3 and rot_hits >= 2 * hits + 2:
            found.append(("rot13", m.start(), m.end(), seg.translate(_ROT13)))
    layers: list[Layer] = []
    for encoding, start, end, decoded in sorted(found, key=lambda f: f[1]):
        if len(layers) >= MAX_LAYERS or budget[0] <= 0:
            break
        decoded = decoded[: budget[0]]
        budget[0] -= len(decoded)
        span = view.original_span(start, end)
        inner = _normalize(decoded, depth + 1, budget, fixed=span)
        layers.append(Layer(encoding, span, depth + 1, inner))
    return layers


def _normalize(text: str, depth: int, budget: list[int], fixed: tuple[int, int] | None = None) -> Normalized:
    flags: Counter[str] = Counter()
    hidden: list[tuple[str, int, int]] = []
    tagged: list[tuple[int, int]] = []
    truncated = len(text) > MAX_CHARS
    if truncated:
        text = text[:MAX_CHARS]
    stage1 = _stage1(text, flags, hidden, tagged)
    # hostile text can alternate tag and visible characters: keep the longest runs, at most MAX_LAYERS
    tagged = sorted(sorted(tagged, key=lambda r: r[0] - r[1])[:MAX_LAYERS])
    if fixed is not None:
        stage1 = View(stage1.text, fixed=fixed)
        hidden = [(k, *fixed) for k, _, _ in hidden]
    folded = _stage2(stage1, flags)
    layers: tuple[Layer, ...] = ()
    if depth < MAX_DEPTH:
        layers = tuple(_find_layers(stage1, depth, budget, text))
    flags = Counter({k: v for k, v in flags.items() if v})
    return Normalized(text, stage1, folded, flags, tuple(hidden), layers, truncated, tuple(tagged))


def normalize(text: str) -> Normalized:
    """Normalise `text` for detection; see the module docstring."""
    return _normalize(text, 0, [MAX_DECODED])
