"""Service lookups (SRV, AD DC locator, DNS-SD): the tunnel model judges only their free labels."""

from __future__ import annotations

import pytest

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.dns.detectors.tunnel import TunnelConfig, TunnelDetector
from tutela.dns.services import service_remainder
from tutela.dns.subjects import DnsQuery

REMAINDER = {
    "_ldap._tcp": "", "_kerberos._udp": "", "_kpasswd._tcp.ad": "ad", "_kerberos._tcp.dc._msdcs": "",
    "_ldap._tcp.default-first-site-name._sites.dc._msdcs.corp": "default-first-site-name.corp",
    "_gc._tcp.amsterdam-dc2._sites": "amsterdam-dc2", "_ldap._tcp.pdc._msdcs": "", "_ldap._tcp.gc._msdcs": "",
    "0f3c9a52-7d4e-4b61-9a3f-2c8e5b7d1a40._msdcs.corp": "corp",
    "_ldap._tcp.5b9e2c71-0a4d-4e8f-b3c6-7d1f9e2a8b54.domains._msdcs": "", "_sipfederationtls._tcp": "",
    "_autodiscover._tcp": "", "b._dns-sd._udp.0.1.168": "0.1.168", "_services._dns-sd._udp": "",
    "_ldap._tcp.mzxw6ytboi2dgmbrgu4tgnrxhe3tm": "mzxw6ytboi2dgmbrgu4tgnrxhe3tm",  # data in a free label: judged
}  # fmt: skip
NOT_SERVICE = ["", "www", "_dmarc", "selector1._domainkey", "mail.corp", "q+z8anwaba", "_ldap._xyz", "_.tcp",
               "mzxw6ytboi2dgmbrgu4tgnrxhe3tm.yrbo2g.t", "0f3c9a52-7d4e-4b61-9a3f-2c8e5b7d1a40.t"]  # fmt: skip


@pytest.mark.parametrize(("sub", "rest"), REMAINDER.items())
def test_the_structure_comes_off(sub: str, rest: str) -> None:
    assert service_remainder(sub) == rest


@pytest.mark.parametrize("sub", NOT_SERVICE)
def test_other_subdomains_are_judged_whole(sub: str) -> None:
    assert service_remainder(sub) is None


def test_enterprise_lookups_pass_and_data_in_their_shape_does_not() -> None:
    det = TunnelDetector(TunnelConfig(window=False), ModelCache())
    for name in ("_ldap._tcp.default-first-site-name._sites.dc._msdcs.corp.contoso.com", "_kerberos._udp.contoso.com"):
        assert list(det.detect(DnsQuery(name, 33, "10.0.0.9"), ScanContext())) == []
    bare = det.score("_kerberos._udp.contoso.com")
    assert (bare.p, bare.level) == (0.0, None) and "service lookup" in bare.note
    for name in ("_ldap._tcp.mzxw6ytboi2dgmbrgu4tgnrxhe3tmqzl.evil.example",
                 "_ldap._tcp.ge3tamrrgq3dknzyhe4tmnjxgmztaojthe2tkmbqgiydcmzrgq4dimbwg4.evil.example"):  # fmt: skip
        assert det.score(name).level == "high"
