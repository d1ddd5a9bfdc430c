"""Service-lookup names (RFC 2782 SRV, Active Directory's DC locator, DNS-SD): the tunnel model judges what is
left once their fixed structure is taken off.

Every Windows client asks all day for `_ldap._tcp.<site>._sites.dc._msdcs.<domain>`, `_kerberos._udp.<domain>`
and, on domain controllers, `<dsa-guid>._msdcs.<forest>`. Their underscores and GUIDs look like encoded data
to the per-query tunnel model, which flagged most of them HIGH, so the default policy would have broken domain
logons; training on such names instead taught the model to pass base32 data under multi-label subdomains. So
the structure is recognised here and removed: `_ldap._tcp.default-first-site-name._sites.dc._msdcs.corp` is
judged as `default-first-site-name.corp`, `_kerberos._udp` as nothing at all (no per-query score). Data put in
the free labels of this shape (`_ldap._tcp.<base32>`) is judged like any other label, and the tunnel window
still counts every query.
"""

from __future__ import annotations

import re

_LABEL = r"[a-z0-9-]{1,63}"
_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SRV = r"_[a-z0-9][a-z0-9-]{0,30}\._(?:tcp|udp|tls)"  # _service._proto
_SERVICE = re.compile(
    rf"""(?x)
    (?:
        {_SRV}(?:\.(?P<site>{_LABEL})\._sites)?(?:\.(?:dc|pdc|gc)\._msdcs)?  # SRV, AD site and DC-locator forms
      | _ldap\._tcp\.{_GUID}\.domains\._msdcs                                 # a domain by its GUID
      | {_GUID}\._msdcs                                                       # a domain controller by its DSA GUID
      | (?:b|db|lb|r|dr)\._dns-sd\._udp | _services\._dns-sd\._udp            # DNS-SD browsing
    )
    (?P<zone>(?:\.{_LABEL})*)  # the zone part: `corp` in _ldap._tcp.corp.example.com
    """
)


def service_remainder(sub: str) -> str | None:
    """None when `sub` (a subdomain part, lower-case) is not a service lookup; else its free labels (site, zone)
    joined with dots, "" when there are none."""
    # cheap necessary conditions first (this runs on every new subdomain): an underscore label, a DNS-SD
    # name, or a GUID (its first dash at index 8)
    if not (sub[:1] == "_" or "._dns-sd." in sub or sub[8:9] == "-"):
        return None
    m = _SERVICE.fullmatch(sub)
    if m is None:
        return None
    return ".".join(x for x in (m["site"], m["zone"][1:]) if x)
