"""Synthetic hard negatives, generated from templates with a fixed seed (documented in docs/models/dns.md).

The shared data has popular *registrable* domains only. Real traffic also has:
- hostnames that cloud and CDN platforms generate under their own public suffixes (PSL private
  section), where the hash *is* the registrable label: d1x2y3z4a5b6c7.cloudfront.net,
  3f2a9c1e.azureedge.net, shrouded-mesa-41522.herokuapp.com;
- ordinary subdomains under popular domains, some long or hashed: www, mail, api, CDN shards,
  PTR and DNSBL lookups, DKIM/DMARC/SRV names, AV reputation lookups.
These are what DGA and tunnel models must not flag; they are generated here, never copied.

Real subdomain labels are far more varied than COMMON_SUBS (`smtpauth`, `iecvlist`, `poczta`): the 20,000 most
frequent labels of the PyPI package fierce 1.6.0 (`fierce/lists/20000.txt`, GPL-3.0, a DNS reconnaissance word
list; installed hash-pinned by the Makefile, read at training time, never shipped) give the tunnel model real
hostnames as negatives, split by label so that the held-out ones test labels never trained on.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Sequence

CLOUD_SUFFIXES = (
    "cloudfront.net", "herokuapp.com", "azurewebsites.net", "blob.core.windows.net", "s3.amazonaws.com",
    "github.io", "netlify.app", "vercel.app", "appspot.com", "firebaseapp.com", "web.app", "pages.dev",
    "workers.dev", "azureedge.net", "trafficmanager.net", "cloudapp.net", "akamaiedge.net", "myshopify.com",
    "ngrok.io", "fly.dev", "onrender.com", "r2.dev",
)  # fmt: skip

COMMON_SUBS = (
    "www", "mail", "api", "cdn", "static", "img", "images", "m", "app", "login", "auth", "smtp", "imap", "ns1",
    "ns2", "mx", "vpn", "portal", "docs", "blog", "shop", "store", "support", "help", "status", "dev", "staging",
    "assets", "media", "video", "edge", "download", "update", "updates", "telemetry", "metrics", "events",
    "accounts", "secure", "cdn1", "cdn2", "s1", "s2", "web", "en", "de", "fr", "us", "eu", "api-v2", "graph",
    "autodiscover", "lyncdiscover", "sip", "webmail", "remote", "owa", "ftp", "cpanel", "whm", "news",
)  # fmt: skip

_ALNUM = string.ascii_lowercase + string.digits
_HEX = "0123456789abcdef"
_WORDS = (
    "shrouded", "mesa", "calm", "river", "ancient", "falls", "quiet", "forest", "rapid", "brook", "silent", "peak",
    "hidden", "lake", "bold", "harbor", "misty", "canyon", "golden", "meadow", "proud", "cliff", "bright", "dawn",
)  # fmt: skip


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def cloud_hostname(rng: random.Random) -> str:
    """A platform-generated hostname whose registrable label is a hash or a random slug."""
    suffix = rng.choice(CLOUD_SUFFIXES)
    kind = rng.randrange(6)
    if kind == 0:
        label = "d" + _s(rng, _ALNUM, 13)  # CloudFront style
    elif kind == 1:
        label = _s(rng, _HEX, rng.choice((8, 12, 16, 20, 32)))
    elif kind == 2:
        label = f"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}-{rng.randrange(10000, 99999)}"  # Heroku style
    elif kind == 3:
        label = f"{rng.choice(_WORDS)}{rng.choice(('-', ''))}{_s(rng, _ALNUM, rng.randrange(4, 10))}"
    elif kind == 4:
        label = f"{rng.choice(_WORDS)}-{_s(rng, _HEX, 8)}-{_s(rng, _HEX, 4)}"
    else:
        label = _s(rng, _ALNUM, rng.randrange(6, 24))
    return f"{label}.{suffix}"


def benign_hostname(rng: random.Random, domain: str) -> str:
    """An ordinary, sometimes long or hashed, subdomain under a popular registrable domain."""
    kind = rng.randrange(12)
    if kind <= 3:
        return f"{rng.choice(COMMON_SUBS)}.{domain}"
    if kind == 4:
        return f"{rng.choice(COMMON_SUBS)}.{rng.choice(('us-east-1', 'eu-west-1', 'prod', 'int', 'corp'))}.{domain}"
    if kind == 5:  # CDN shard / cache node
        return f"{rng.choice(('rr', 'e', 'a', 'cache', 'edge', 'node'))}{rng.randrange(1, 9999)}.{domain}"
    if kind == 6:  # PTR or DNSBL lookup of an IPv4 address
        ip = ".".join(str(rng.randrange(256)) for _ in range(4))
        return f"{ip}.{rng.choice(('in-addr.arpa', 'zen.spamhaus.org', 'bl.spamcop.net', domain))}"
    if kind == 7:  # DKIM, DMARC, SRV
        return rng.choice(
            (
                f"selector{rng.randrange(1, 3)}._domainkey.{domain}",
                f"_dmarc.{domain}",
                f"_sip._tls.{domain}",
                f"_ldap._tcp.dc._msdcs.{domain}",
                f"google._domainkey.{domain}",
            )
        )
    if kind == 8:  # hashed tenant or asset names
        return f"{_s(rng, _HEX, rng.choice((8, 16, 32)))}.{rng.choice(COMMON_SUBS)}.{domain}"
    if kind == 9:  # AV / reputation lookups carry a hash in the name
        return f"{_s(rng, _HEX, 32)}.{rng.choice(('avqs', 'rep', 'lookup', 'gti'))}.{domain}"
    if kind == 10:
        return f"{rng.choice(COMMON_SUBS)}-{_s(rng, _ALNUM, rng.randrange(3, 8))}.{domain}"
    return f"{rng.choice(_WORDS)}-{rng.choice(COMMON_SUBS)}.{domain}"


def generate(kind: str, domains: Sequence[str], n: int, seed: int) -> list[str]:
    rng = random.Random(f"{kind}:{seed}")
    if kind == "cloud":
        return [cloud_hostname(rng) for _ in range(n)]
    return [benign_hostname(rng, rng.choice(domains)) for _ in range(n)]


SUBDOMAIN_LIST = ("fierce.lists", "20000.txt")
SUBDOMAIN_LIST_SHA256 = "451cdb8cef4baf995cdb5886c8776fb22bd882ca6b5b24331bfff186e82feea2"


def subdomain_labels() -> list[str]:
    """The real subdomain labels (fierce's word list), checked against its pinned sha256."""
    import importlib.resources

    package, name = SUBDOMAIN_LIST
    try:
        raw = (importlib.resources.files(package) / name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise RuntimeError(
            "the subdomain word list (PyPI fierce==1.6.0) is not installed: `make install` installs it"
        ) from exc
    if hashlib.sha256(raw).hexdigest() != SUBDOMAIN_LIST_SHA256:
        raise RuntimeError(f"{package}/{name}: sha256 differs from the pinned {SUBDOMAIN_LIST_SHA256[:16]}")
    return [w for w in raw.decode("ascii", errors="replace").split() if w.replace("-", "").isalnum()]


def wordlist_hostname(rng: random.Random, labels: Sequence[str], domain: str) -> str:
    """A real subdomain label (or two, or one with a number) under a popular registrable domain."""
    kind = rng.randrange(10)
    first = rng.choice(labels)
    if kind <= 6:
        return f"{first}.{domain}"
    if kind <= 8:
        return f"{first}.{rng.choice(labels)}.{domain}"
    return f"{first}{rng.randrange(1, 100)}.{domain}"


def generate_wordlist(kind: str, labels: Sequence[str], domains: Sequence[str], n: int, seed: int) -> list[str]:
    rng = random.Random(f"{kind}:{seed}")
    return [wordlist_hostname(rng, labels, rng.choice(domains)) for _ in range(n)]
