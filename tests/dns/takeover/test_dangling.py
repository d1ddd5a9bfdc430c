"""The dangling-DNS scanner against a real NSD on loopback serving planted and healthy records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dns.takeover.nsd import Nsd, soa
from tests.dns.takeover.world import PLANTED, RELEASED
from tutela.cli import main
from tutela.core.errors import ConfigError, ParseError, ResourceLimitExceeded
from tutela.dns.takeover import report, zonefile
from tutela.dns.takeover.dangling import ScanOptions, scan_records
from tutela.dns.takeover.fingerprints import Fingerprints, http_unclaimed
from tutela.dns.takeover.zonefile import read_zone_file

pytestmark = pytest.mark.network


def _key(f: object) -> tuple[str, str, str]:
    return (f.name, f.type, f.target)  # type: ignore[attr-defined]


def test_every_planted_dangling_record_found_and_no_healthy_one(world: Nsd) -> None:
    zone, records = read_zone_file(world.dir / "example.com.zone")
    findings, stats = scan_records(zone, records, world.address, options=ScanOptions(released=RELEASED))
    got = {_key(f): f.reason for f in findings}
    assert got == PLANTED  # all planted found, each for the right reason, nothing healthy flagged
    assert len(findings) == len(got)  # one finding per dangling record
    assert stats.checked == stats.records == len(records)
    assert stats.inconclusive == 1  # host.unserved.org: REFUSED is never a finding
    by_key = {_key(f): f for f in findings}
    ns = by_key[("lapsed.example.com", "NS", "ns1.lapsed-dns.net")]
    assert str(ns.severity) == "critical"
    chained = by_key[("chain2.example.com", "CNAME", "alias2.example.com")]
    assert chained.chain == ("alias2.example.com", "gone2.azurewebsites.net")
    assert chained.service == "Azure App Service"


def test_without_released_list_released_addresses_are_not_findings(world: Nsd) -> None:
    zone, records = read_zone_file(world.dir / "example.com.zone")
    findings, _ = scan_records(zone, records, world.address)
    reasons = {f.reason for f in findings}
    assert "released_address" not in reasons
    assert len(findings) == len(PLANTED) - 2


def test_axfr_gives_the_same_findings(world: Nsd) -> None:
    records = zonefile.axfr(*world.address, "example.com")
    findings, _ = scan_records("example.com", records, world.address, options=ScanOptions(released=RELEASED))
    assert {_key(f): f.reason for f in findings} == PLANTED


def test_cli_json_output_and_exit_code(world: Nsd, capsys: pytest.CaptureFixture[str]) -> None:
    zf = world.dir / "example.com.zone"
    argv = ["dns", "dangling", str(zf), "--resolver", f"127.0.0.1:{world.port}"]
    assert main([*argv, *(x for r in RELEASED for x in ("--released", r))]) == 1
    data = json.loads(capsys.readouterr().out)
    assert len(data["findings"]) == len(PLANTED)
    for f in data["findings"]:
        assert {"name", "type", "target", "reason", "severity"} <= set(f)
    assert data["stats"]["records"] > 0


def test_cli_sarif_output(world: Nsd, tmp_path: Path) -> None:
    out = tmp_path / "report.sarif"
    argv = ["dns", "dangling", str(world.dir / "example.com.zone"), "--resolver", f"127.0.0.1:{world.port}"]
    assert main([*argv, "--format", "sarif", "--output", str(out)]) == 1
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(run["results"]) == len(PLANTED) - 2
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"] in rule_ids
        assert result["level"] in ("warning", "error")
        assert result["partialFingerprints"]["danglingRecord/v1"]
    prints = [r["partialFingerprints"]["danglingRecord/v1"] for r in run["results"]]
    assert len(set(prints)) == len(prints)


def test_cli_axfr_and_table(world: Nsd, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    argv = ["dns", "dangling", "--axfr", f"127.0.0.1:{world.port}", "example.com"]
    assert main([*argv, "--resolver", f"127.0.0.1:{world.port}", "--format", "table"]) == 1
    out = capsys.readouterr().out
    assert "gone-app.azurewebsites.net" in out and "unregistered_domain" in out


def test_clean_zone_exits_zero(world: Nsd, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zf = tmp_path / "clean.zone"
    zf.write_text(soa("example.com") + "app IN CNAME good-app.azurewebsites.net.\nmx IN MX 10 mail.example.com.\n")
    assert main(["dns", "dangling", str(zf), "--resolver", f"127.0.0.1:{world.port}"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


def test_saved_findings_round_trip_and_rescan_replaces(world: Nsd, tutela_home: Path) -> None:
    argv = ["dns", "dangling", str(world.dir / "example.com.zone"), "--resolver", f"127.0.0.1:{world.port}"]
    assert main([*argv, "--save", "--output", str(tutela_home.parent / "o.json")]) == 1
    saved = report.load_saved(tutela_home)
    assert {_key(f) for f in saved["example.com"]} == {k for k, v in PLANTED.items() if v != "released_address"}
    report.save(tutela_home, "example.com", [])
    assert report.load_saved(tutela_home)["example.com"] == []


def test_zone_file_limits_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inc = tmp_path / "inc.zone"
    inc.write_text(soa("example.com") + "$INCLUDE /etc/passwd\n")
    with pytest.raises(ParseError, match="INCLUDE"):
        read_zone_file(inc)
    bad = tmp_path / "bad.zone"
    bad.write_text(soa("example.com") + "www IN A not-an-address\n")
    with pytest.raises(ParseError, match=r"bad\.zone"):
        read_zone_file(bad)
    gen = tmp_path / "gen.zone"
    gen.write_text(soa("example.com") + "$GENERATE 1-4000000000 host$ A 192.0.2.1\n")
    with pytest.raises(ResourceLimitExceeded, match="GENERATE"):
        read_zone_file(gen)
    gen.write_text(soa("example.com") + "$GENERATE 1-20 host$ CNAME gone$.azurewebsites.net.\n")
    assert len([r for r in read_zone_file(gen)[1] if r.type == "CNAME"]) == 20
    monkeypatch.setattr(zonefile, "MAX_ZONE_BYTES", 10)
    with pytest.raises(ResourceLimitExceeded):
        read_zone_file(bad)
    with pytest.raises(ParseError):
        read_zone_file(tmp_path / "absent.zone")


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.zone"
    bad.write_text("garbage garbage\n")
    assert main(["dns", "dangling", str(bad), "--resolver", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tutela: error:") and "Traceback" not in err
    assert main(["dns", "dangling", str(bad)]) == 2
    assert "--resolver" in capsys.readouterr().err


def test_fingerprint_table() -> None:
    fp = Fingerprints.load()
    assert len(fp.services) >= 30
    ids = {s.id for s in fp.services}
    for needed in (
        "aws-s3-bucket",
        "aws-s3-website",
        "azure-app-service",
        "azure-cloud-service",
        "azure-traffic-manager",
        "azure-blob",
        "github-pages",
        "heroku",
        "fastly",
        "shopify",
    ):
        assert needed in ids
    for s in fp.services:
        assert s.cname or s.addresses, s.id
        assert s.nxdomain_claimable or s.http is not None, s.id  # every service has a sign
    assert fp.match_names(["x.azurewebsites.net"]).service.id == "azure-app-service"  # type: ignore[union-attr]
    assert fp.match_names(["bucket.s3-website-us-east-1.amazonaws.com"]).service.id == "aws-s3-website"  # type: ignore[union-attr]
    assert fp.match_names(["azurewebsites.net.evil.com"]) is None
    assert fp.match_addresses(["185.199.109.153"]).service.id == "github-pages"  # type: ignore[union-attr]
    gh = next(s for s in fp.services if s.id == "github-pages")
    assert http_unclaimed(gh, 404, "<h1>There isn't a GitHub Pages site here.</h1>")
    assert not http_unclaimed(gh, 200, "<h1>There isn't a GitHub Pages site here.</h1>")
    assert not http_unclaimed(gh, 404, "a real 404 page")


def test_user_fingerprints_extend_and_validate(tmp_path: Path) -> None:
    extra = tmp_path / "fp.json"
    extra.write_text(
        json.dumps(
            {
                "services": [
                    {"id": "acme-pages", "service": "Acme", "cname": ["*.acme.test"], "nxdomain_claimable": True}
                ]
            }
        )
    )
    assert Fingerprints.load(extra).match_names(["a.acme.test"]).service.service == "Acme"  # type: ignore[union-attr]
    extra.write_text(json.dumps({"services": [{"id": "Bad Id", "service": "x"}]}))
    with pytest.raises(ConfigError, match=r"fp\.json"):
        Fingerprints.load(extra)


def test_http_signs_use_the_given_probe_and_never_the_network(world: Nsd) -> None:
    """HTTP checks run only when asked; here through an in-memory probe, never a real request."""
    zone, records = read_zone_file(world.dir / "example.com.zone")
    asked: list[tuple[str, tuple[str, ...]]] = []

    def probe(host: str, addresses: object) -> tuple[int, str]:
        asked.append((host, tuple(addresses)))  # type: ignore[arg-type]
        if host == "pages.example.com":
            return 404, "There isn't a GitHub Pages site here."
        return 200, "welcome"

    findings, _ = scan_records(zone, records, world.address, options=ScanOptions(http=True, http_probe=probe))
    http = [f for f in findings if f.reason == "unclaimed_cloud_resource_http"]
    assert [(f.name, f.service_id) for f in http] == [("pages.example.com", "github-pages")]
    assert {h for h, _ in asked} >= {"pages.example.com", "assets.example.com", "store.example.com"}


def test_axfr_refused_is_a_clear_error(world: Nsd) -> None:
    with pytest.raises(ParseError, match=r"AXFR of nope\.test"):
        zonefile.axfr(*world.address, "nope.test", timeout=5)


def test_through_a_recursive_resolver_the_findings_are_the_same(world: Nsd, tmp_path: Path) -> None:
    """Unbound in front of NSD (stub zones): the usual deployment, a recursive resolver that
    chases CNAMEs across zones itself."""
    from tests.dns.takeover.unbound import Unbound
    from tests.dns.takeover.world import world_zones

    stubs = {zone: world.address for zone in world_zones()}
    with Unbound(tmp_path / "unbound", stubs, refuse=("org",)) as resolver:
        zone, records = read_zone_file(world.dir / "example.com.zone")
        findings, stats = scan_records(zone, records, resolver.address, options=ScanOptions(released=RELEASED))
    assert {_key(f): f.reason for f in findings} == PLANTED
    assert stats.inconclusive == 1
