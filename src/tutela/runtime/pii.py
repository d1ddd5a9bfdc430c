"""PII recognisers: patterns, validators (Luhn, IBAN mod-97, SSN rules) and context words.

Entity names are Presidio's (EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, US_SSN,
IP_ADDRESS, PERSON, STREET_ADDRESS), so results interoperate with Presidio-based tooling.
As in Presidio, a weak pattern scores low, a validator confirms or rejects it, and context words
near the match ("phone", "ssn", "card") raise the score. Names and street addresses come from
heuristics (honorifics, "my name is", street suffixes, address cues such as "lives at" / "address:"
followed by a line with a number, PO and military boxes) and, when `ner` is given, from its PERSON
entities: the PERSON recogniser (`tutela.runtime.person`) over capitalised words, with or without the
optional spaCy backend (`tutela.runtime.ner`): see docs/eval/runtime.md.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

CONTEXT_WINDOW = 48  # characters before (and after) a match searched for context words
CONTEXT_BOOST = 0.35


@dataclass(frozen=True, slots=True)
class PiiMatch:
    entity: str
    start: int
    end: int
    score: float
    rule: str


@dataclass(frozen=True, slots=True)
class Recognizer:
    entity: str
    rule: str
    pattern: re.Pattern[str]
    score: float
    validate: Callable[[str], float | None] | None = None  # new score, or None to reject
    context: tuple[str, ...] = ()
    group: int = 0
    # the fewest digits any match holds: on ASCII text with fewer, the regex is skipped (an exact
    # prefilter; on other text `\d` also matches non-ASCII digits, so every recogniser runs)
    min_digits: int = 0
    # exact prefilters on any text, built from what the pattern itself requires: a literal it spells out
    # case-sensitively (one of them must appear), or a cheap regex every match must contain
    literals: tuple[str, ...] = ()
    gate: re.Pattern[str] | None = None


# --- validators -----------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[068]|6(?:011|5|4[4-9]|22)|35|21|18|50|5[06-9]|6[0-9]")


def _credit_card(value: str) -> float | None:
    digits = re.sub(r"[ -]", "", value)
    if not 12 <= len(digits) <= 19 or len(set(digits)) < 2 or not luhn_ok(digits):
        return None
    return 1.0 if _CARD_PREFIX.match(digits) else 0.6


IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_ok(value: str) -> bool:
    iban = re.sub(r"[ -]", "", value).upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    moved = iban[4:] + iban[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


def _iban(value: str) -> float | None:
    return 1.0 if iban_ok(value) else None


def ssn_ok(value: str) -> bool:
    digits = re.sub(r"[ .-]", "", value)
    if len(digits) != 9 or len(set(digits)) == 1:
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return digits not in ("123456789", "078051120", "219099999")


def _ssn(value: str) -> float | None:
    if not ssn_ok(value):
        return None
    seps = set(re.sub(r"\d", "", value))
    if not seps:
        return 0.3  # nine bare digits: only with context ("ssn", "social security")
    return None if "." in seps else 0.6


def _ip(value: str) -> float | None:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if addr.version == 4 and (value.startswith("0.") or value.count(".") != 3):
        return None
    return 0.6 if addr.version == 4 else 0.8


def _email(value: str) -> float | None:
    local, _, domain = value.rpartition("@")
    if not local or "." not in domain or ".." in value or domain.startswith("-"):
        return None
    return 1.0


def _phone(value: str) -> float | None:
    digits = re.sub(r"\D", "", value.split("x")[0].split("ext")[0])
    if not 7 <= len(digits) <= 15 or len(set(digits)) < 3:
        return None
    if _DATE_LIKE.fullmatch(value.strip()):
        return None
    if value.lstrip().startswith("+"):
        return 0.7
    if _NANP.fullmatch(value.strip()):
        return 0.6
    return 0.35


_DATE_LIKE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_NANP = re.compile(r"\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?:\s*(?:x|ext\.?)\s*\d{1,5})?")

# --- names and addresses: heuristics -----------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CAP = r"[A-Z\u00c0-\u00de][a-z\u00df-\u00ff\u0100-\u017f'’-]+"
_NAME = rf"{_CAP}(?:\s+(?:[A-Z]\.|{_CAP})){{0,3}}"
_STREET_SUFFIX = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Parkway|Pkwy|"
    r"Circle|Cir|Highway|Hwy|Square|Sq|Trail|Trl|Loop|Crescent|Cres|Close|Row|Alley|Plaza|Path|Pike|Grove|Hill|"
    r"Gardens|Mews|Walk|Heights|Park|Ridge|View|Vista|Point|Junction|Crossing|Harbor|Estates|Station|Port|Run"
)
_ADDRESS = re.compile(
    rf"\b\d{{1,6}}(?:[ -]\d{{1,4}})?\s+(?:{_CAP}\s+){{0,4}}(?:{_STREET_SUFFIX})\b\.?"
    rf"(?:,?\s+(?:Apt\.?|Suite|Unit|#|Ste\.?)\s*\d+[A-Z]?)?"
    rf"(?:,?\s+{_CAP}(?:\s+{_CAP})?,?\s+[A-Z]{{2}}\s+\d{{5}}(?:-\d{{4}})?)?"
    rf"|\b{_CAP}(?:straße|strasse|gasse|weg|vej|veien|vegen|gatan|gata|katu|tie|laan|straat|plein|utca|ulica|"
    rf"gade)\s+\d{{1,5}}[a-z]?\b"
    rf"|\b(?:ul\.|al\.|Rue|rue|Via|via|Calle|calle|Avenida|Rua|Piazza|Carrer|Plac)\s+(?:{_CAP}\s+){{0,3}}{_CAP}"
    rf"(?:,?\s+\d{{1,5}}[a-z]?)?"
    rf"|\b(?:Apt\.?|Suite|Unit)\s+\d{{1,5}}\b"
)
# an address announced by a cue ("lives at", "address:", "ship to"): the rest of the line (and up to three
# short following lines) when it holds a number; PO boxes and US military addresses (PSC/Unit ... Box, APO/FPO)
_ADDRESS_CUE = re.compile(
    r"(?:\b(?:[Aa]ddress(?:\s+is)?|lives?\s+(?:at|in)|resides?\s+at|located\s+at|(?:office|store|shop|home)\s+is\s+"
    r"at|(?:ship|send|deliver|mail|post)(?:\s+\w+){0,4}\s+to|moved\s+to|stay(?:ing)?\s+at)\s*:?\s*)"
    r"(?P<addr>(?=[^\n?!]{0,40}\d)[^\n?!;]{4,90}(?:\n[ \t]*[^\n?!;]{1,40}){0,3})"
)
# one of these is in every _ADDRESS_CUE match ([Aa]ddress, lives?, resides?, ... stay(?:ing)?)
_CUE_WORDS = (
    "ddress", "live", "reside", "located", "office", "store", "shop", "home",
    "ship", "send", "deliver", "mail", "post", "moved", "stay",
)  # fmt: skip
_ADDRESS_BOX = re.compile(
    r"\b(?:PSC|Unit|USNS|USNV|USS|USCGC)\s+[\w ]{1,20}?,?\s+Box\s+\d{1,5}(?:\s*\n?\s*(?:APO|FPO|DPO)\s+[A-Z]{2}\s+"
    r"\d{5})?|\b(?:P\.?\s?O\.?\s+Box|Postfach|Apartado)\s+\d{1,6}\b"
)
# a postal block: "<number> <street> <number>" then up to four short lines, the last one "<region> <postcode>"
_ADDRESS_BLOCK = re.compile(
    r"(?m)^[ \t>]*\d{1,6}[ \t]+[^\W\d][^\n]{1,40}?\d{1,5}[a-z]?\.?[ \t]*(?:\n[ \t>]*[^\n]{0,40}){0,4}?"
    r"\n[ \t>]*[^\W\d][^\n]{0,30}[ \t]\d{4,6}[ \t]*$"
)
_ADDRESS_CORNER = re.compile(r"\b(?:the\s+)?corner\s+of\s+[^\n.?!]{3,60}?\s+and\s+[^\n.?!,]{3,40}")
_TITLES = ("Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Sir", "Madam", "Mister")
_TITLE = rf"(?:{'|'.join(_TITLES)})\.?\s+"
_CUES = (
    "[Mm]y name is", "[Nn]ame:", "I am", "I'm", "[Cc]alled", "[Nn]amed", "[Dd]ear", "[Ss]incerely,?", "[Rr]egards,?",
    "[Tt]hanks,", "[Ss]igned", "[Cc]ontact", "[Aa]uthor:", "[Ff]rom:", "[Tt]o:", "[Cc]c:", "[Pp]atient", "[Cc]ustomer",
    "[Ee]mployee", "[Mm]anager", "[Ww]ife", "[Hh]usband", "[Ss]on", "[Dd]aughter", "[Ff]riend", "[Bb]rother",
    "[Ss]ister", "[Mm]other", "[Ff]ather", "[Bb]oss", "[Cc]olleague", "[Nn]eighbo(?:u)?r",
)  # fmt: skip


def _first_letters(alternatives: Iterable[str]) -> str:
    """The characters a match of any of these alternatives can begin with ("[Mm]y" -> "Mm")."""
    return "".join(sorted({c for a in alternatives for c in (a[1 : a.index("]")] if a[0] == "[" else a[0])}))


# the lookahead names every character a match can start with: the regex engine then skips the other
# positions without trying each cue (exact; 40% faster on prose)
_PERSON_CUE = re.compile(
    rf"(?=[{_first_letters(_CUES + _TITLES)}])"
    rf"(?:\b(?:{'|'.join(_CUES)})\s+(?:{_TITLE})?|\b{_TITLE})(?P<name>{_NAME})"
)
_PERSON_VERB = re.compile(
    rf"(?P<name>{_CAP}\s+(?:[A-Z]\.\s+)?{_CAP})(?=\s+(?:said|says|wrote|told|asked|lives|works|was born|is a|"
    rf"has|will|reported|joined|called|sent|\(|,\s+(?:a|an|the|who|born|age|aged)\b))"
)
_NOT_NAMES = _words(
    "The This That These Those There Here What When Where Which Who Why How Please Thank Thanks Hello Hi Dear "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August "
    "September October November December I We You He She It They My Our Your His Her Their Mr Mrs Ms Dr"
)


def _person(value: str) -> float | None:
    first = value.split()[0]
    if first in _NOT_NAMES:
        return None
    return 0.6


def _address_cue(value: str) -> float | None:
    v = value.strip()
    if not re.search(r"\d", v) or re.fullmatch(r"[\d\s.,:/$%-]+", v):
        return None  # a bare number or amount, not an address
    if re.match(r"(?:\d{1,2}(?::\d\d)?\s*(?:am|pm|a\.m\.|p\.m\.)|the\s|a\s|an\s|my\s+(?!\w+\s+\d))", v, re.I):
        return None
    return 0.6


# --- the recognisers ---------------------------------------------------------------------------------

RECOGNIZERS: tuple[Recognizer, ...] = (
    Recognizer(
        "EMAIL_ADDRESS",
        "pii.email",
        re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])"),
        0.5,
        _email,
        ("email", "e-mail", "mail", "contact"),
        literals=("@",),
    ),
    Recognizer(
        "CREDIT_CARD",
        "pii.credit_card",
        re.compile(r"(?<![\d-])(?:\d[ -]?){11,18}\d(?![\d-])"),
        0.3,
        _credit_card,
        ("card", "credit", "visa", "mastercard", "amex", "cc", "payment", "debit", "pan"),
        min_digits=12,
    ),
    Recognizer(
        "IBAN_CODE",
        "pii.iban",
        re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]{4}){2,7}(?:[ ]?[A-Za-z0-9]{1,4})?\b"),
        0.4,
        _iban,
        ("iban", "bank", "account", "transfer"),
        min_digits=2,
    ),
    Recognizer(
        "US_SSN",
        "pii.us_ssn",
        re.compile(r"(?<![\d-])\d{3}([- .]?)\d{2}\1\d{4}(?![\d-])"),
        0.3,
        _ssn,
        ("ssn", "social security", "social", "security number", "ss#", "tax id", "taxpayer"),
        min_digits=9,
    ),
    Recognizer(
        "IP_ADDRESS",
        "pii.ip_address",
        re.compile(
            r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.]*\d)"
            r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|[0-9A-Fa-f]{1,4})(?:(?::[0-9A-Fa-f]{1,4}){0,5})(?![\w:])"
        ),
        0.4,
        _ip,
        ("ip", "address", "server", "host", "ipv4", "ipv6"),
        gate=re.compile(r"\d\.\d|:[0-9A-Fa-f]{1,4}:"),  # an IPv4 dot between digits; two IPv6 groups
    ),
    Recognizer(
        "PHONE_NUMBER",
        "pii.phone",
        re.compile(
            r"(?<![\w+.-])(?:\+\d{1,3}[\s.-]?)?(?:\(0?\d{1,4}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,5}){1,4}"
            r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w.-]*\d)"
            r"|(?<![\w+])\+?\d{10,13}(?!\w)"
        ),
        0.3,
        _phone,
        (
            "phone",
            "call",
            "tel",
            "telephone",
            "mobile",
            "cell",
            "fax",
            "number",
            "contact",
            "reach",
            "whatsapp",
            "text me",
            "dial",
            "landline",
            "ring",
        ),
        min_digits=4,
        gate=re.compile(r"\d[\s.-]\d|\d{10}"),  # two digit groups, or ten digits in a row
    ),
    Recognizer(
        "STREET_ADDRESS",
        "pii.street_address",
        _ADDRESS,
        0.6,
        None,
        ("address", "live", "lives", "located", "ship", "deliver", "street", "residence"),
    ),
    Recognizer(
        "STREET_ADDRESS",
        "pii.street_address.short",
        re.compile(rf"\b{_CAP}(?:\s+{_CAP})?\s+\d{{1,4}}[a-z]?\b\.?(?!\s*(?:%|percent|years|mins?|minutes|hours))"),
        0.2,
        None,
        (
            "address",
            "live at",
            "lives at",
            "located at",
            "ship to",
            "deliver to",
            "moved to",
            "residence",
            "address:",
            "lives on",
            "is on",
            "side of",
            "off at",
            "sent to",
            "stay at",
            "office at",
        ),
    ),
    Recognizer("STREET_ADDRESS", "pii.street_address.block", _ADDRESS_BLOCK, 0.7, None, ()),
    Recognizer("STREET_ADDRESS", "pii.street_address.corner", _ADDRESS_CORNER, 0.6, None, (), literals=("corner",)),
    Recognizer(
        "STREET_ADDRESS",
        "pii.street_address.cue",
        _ADDRESS_CUE,
        0.6,
        _address_cue,
        (),
        group=2,
        literals=_CUE_WORDS,
    ),
    Recognizer(
        "STREET_ADDRESS",
        "pii.street_address.box",
        _ADDRESS_BOX,
        0.6,
        None,
        ("address", "mail", "ship"),
        literals=("Box", "Postfach", "Apartado"),
    ),
    Recognizer("PERSON", "pii.person", _PERSON_CUE, 0.6, _person, (), group=1),
    Recognizer("PERSON", "pii.person", _PERSON_VERB, 0.45, _person, ("name", "mr", "ms", "mrs", "dr"), group=1),
)

ENTITIES: tuple[str, ...] = tuple(dict.fromkeys(r.entity for r in RECOGNIZERS))


def _context_hit(lower: str, start: int, end: int, words: tuple[str, ...]) -> bool:
    if not words:
        return False
    window = lower[max(0, start - CONTEXT_WINDOW) : start] + " " + lower[end : end + CONTEXT_WINDOW // 2]
    return any(w in window for w in words)


NER_SCORE = 0.55  # a PERSON entity from the statistical NER


_NO_DIGITS = dict.fromkeys(range(ord("0"), ord("9") + 1))


def analyze(
    text: str,
    entities: Iterable[str] | None = None,
    min_score: float = 0.0,
    ner: Callable[[str], Sequence[tuple[str, int, int]]] | None = None,
    ner_rule: str = "pii.person.ner",
) -> list[PiiMatch]:
    """All PII matches in `text` with score >= min_score, overlaps resolved (highest score wins).
    `ner(text)` -> [(label, start, end)] adds PERSON entities (spaCy's rescored, or the model without spaCy),
    reported under `ner_rule`."""
    wanted = set(entities) if entities is not None else None
    lower = text.lower()
    digits = len(text) - len(text.translate(_NO_DIGITS)) if text.isascii() else len(text)
    candidates: list[PiiMatch] = []
    for rec in RECOGNIZERS:
        if (wanted is not None and rec.entity not in wanted) or digits < rec.min_digits:
            continue
        if rec.literals and not any(lit in text for lit in rec.literals):
            continue
        if rec.gate is not None and rec.gate.search(text) is None:
            continue
        for m in rec.pattern.finditer(text):
            if rec.group == 2:
                start, end = m.start("addr"), m.end("addr")
                while end > start and text[end - 1] in " \t\n,.":
                    end -= 1
            else:
                start, end = (m.start("name"), m.end("name")) if rec.group else (m.start(), m.end())
            value = text[start:end]
            score: float | None = rec.score
            if rec.validate is not None:
                score = rec.validate(value)
                if score is None:
                    continue
            if score < 1.0 and _context_hit(lower, start, end, rec.context):
                score = min(1.0, score + CONTEXT_BOOST)
            if score >= min_score:
                candidates.append(PiiMatch(rec.entity, start, end, round(score, 4), rec.rule))
    if ner is not None and (wanted is None or "PERSON" in wanted):
        for label, start, end in ner(text):
            if label == "PERSON" and _person(text[start:end]) is not None and min_score <= NER_SCORE:
                candidates.append(PiiMatch("PERSON", start, end, NER_SCORE, ner_rule))
    return _resolve(candidates)


_PRIORITY = {e: i for i, e in enumerate(ENTITIES)}


class DisjointSpans:
    """Non-overlapping [start, end) spans, added best first: `add` keeps a span only if it overlaps none kept.
    Kept spans are disjoint, so sorted by start their ends are sorted too and one bisection finds the only one
    that can overlap (a long text has thousands of matches: no quadratic scan)."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def add(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self._starts, end)  # kept spans at [:i] start before `end`
        if i and self._ends[i - 1] > start:
            return False
        self._starts.insert(i, start)
        self._ends.insert(i, end)
        return True


def _resolve(matches: list[PiiMatch]) -> list[PiiMatch]:
    """Drop matches overlapping a better one (higher score, then recogniser order, then longer)."""
    ranked = sorted(matches, key=lambda m: (-m.score, _PRIORITY[m.entity], -(m.end - m.start), m.start))
    free = DisjointSpans()
    kept = [m for m in ranked if free.add(m.start, m.end)]
    return sorted(kept, key=lambda m: (m.start, m.end))
