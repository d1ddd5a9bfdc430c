"""A small DNS "world" NSD serves on loopback: the scanned zone example.com with planted dangling
records among healthy ones, and the zones its targets live in (fake TLDs and cloud services)."""

from __future__ import annotations

from tests.dns.takeover.nsd import soa

RELEASED = ("198.51.100.64/28",)

HEALTHY = """
@ IN NS ns2.healthy-vendor.com.
@ IN MX 10 mx.healthy-vendor.com.
@ IN MX 20 mail.example.com.
@ IN MX 0 .
mail IN A 192.0.2.25
www IN A 192.0.2.10
www IN AAAA 2001:db8::10
api IN A 198.51.100.20
app IN CNAME good-app.azurewebsites.net.
blob IN CNAME goodstore.blob.core.windows.net.
pages IN CNAME someorg.github.io.
assets IN CNAME assets.example.com.s3.amazonaws.com.
chain IN CNAME alias.example.com.
alias IN CNAME good-app.azurewebsites.net.
_sip._tcp IN SRV 0 5 5060 mail.example.com.
_xmpp._tcp IN SRV 0 5 5269 xmpp.healthy-vendor.com.
vendor IN CNAME www.healthy-vendor.com.
store IN CNAME shops.myshopify.com.
partner IN CNAME portal.partner.net.
delegated IN NS ns1.healthy-vendor.com.
elsewhere IN CNAME host.unserved.org.
text IN TXT "v=spf1 -all"
"""

# (name, type, target) -> expected reason
PLANTED = {
    ("old-app.example.com", "CNAME", "gone-app.azurewebsites.net"): "unclaimed_cloud_resource",
    ("old-tm.example.com", "CNAME", "gone-tm.trafficmanager.net"): "unclaimed_cloud_resource",
    ("old-blob.example.com", "CNAME", "gonestore.blob.core.windows.net"): "unclaimed_cloud_resource",
    ("old-eb.example.com", "CNAME", "gone-env.us-east-1.elasticbeanstalk.com"): "unclaimed_cloud_resource",
    ("old-cs.example.com", "CNAME", "gone-svc.cloudapp.net"): "unclaimed_cloud_resource",
    ("chain2.example.com", "CNAME", "alias2.example.com"): "unclaimed_cloud_resource",
    ("alias2.example.com", "CNAME", "gone2.azurewebsites.net"): "unclaimed_cloud_resource",
    ("brand.example.com", "CNAME", "www.expired-brand.com"): "unregistered_domain",
    ("example.com", "MX", "mx.expired-mailer.net"): "unregistered_domain",
    ("lapsed.example.com", "NS", "ns1.lapsed-dns.net"): "unregistered_domain",
    ("missing.example.com", "CNAME", "nothing.example.com"): "nxdomain",
    ("vendor-old.example.com", "CNAME", "retired.healthy-vendor.com"): "nxdomain",
    ("_ldap._tcp.example.com", "SRV", "ldap-old.healthy-vendor.com"): "nxdomain",
    ("legacy.example.com", "A", "198.51.100.70"): "released_address",
    ("legacy-cname.example.com", "CNAME", "legacy-host.healthy-vendor.com"): "released_address",
}


def _planted_lines() -> str:
    lines = []
    for (name, rtype, target), _ in PLANTED.items():
        owner = name.removesuffix("example.com").rstrip(".") or "@"
        if rtype == "MX":
            data = f"30 {target}."
        elif rtype == "SRV":
            data = f"0 5 389 {target}."
        elif rtype == "A":
            data = target
        else:
            data = f"{target}."
        lines.append(f"{owner} IN {rtype} {data}")
    return "\n".join(lines) + "\n"


def example_zone() -> str:
    return soa("example.com") + HEALTHY + _planted_lines()


def world_zones() -> dict[str, str]:
    return {
        "example.com": example_zone(),
        "com": soa("com"),
        "net": soa("net"),
        "healthy-vendor.com": soa("healthy-vendor.com")
        + "www IN A 203.0.113.10\nmx IN A 203.0.113.25\nns2 IN A 203.0.113.53\nxmpp IN A 203.0.113.5\n"
        + "legacy-host IN A 198.51.100.66\n",
        "partner.net": soa("partner.net") + "portal IN A 203.0.113.80\n",
        "azurewebsites.net": soa("azurewebsites.net") + "good-app IN A 20.40.1.1\n",
        "trafficmanager.net": soa("trafficmanager.net"),
        "cloudapp.net": soa("cloudapp.net"),
        "core.windows.net": soa("core.windows.net") + "goodstore.blob IN A 20.60.1.1\n",
        "elasticbeanstalk.com": soa("elasticbeanstalk.com"),
        "github.io": soa("github.io") + "* IN A 185.199.108.153\n",
        "amazonaws.com": soa("amazonaws.com") + "*.s3 IN A 52.216.0.1\n",
        "myshopify.com": soa("myshopify.com") + "shops IN A 23.227.38.65\n",
    }
