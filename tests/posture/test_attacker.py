"""Thinking like an attacker against the allow-list design: each way around it is blocked.

Samples are built in tests/posture/corpus.py (`attacker()`), with harmless payloads, never loaded.
They are part of the malicious corpus the benchmark runs every scanner over.
"""

from __future__ import annotations

import pickletools

import pytest

from tests.posture import corpus
from tutela.core.findings import Action, Severity

SAMPLES = corpus.attacker()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_attacker_sample_is_blocked(scan, name):
    verdict = scan(SAMPLES[name], name)
    assert verdict.action == Action.BLOCK, (name, [f.to_dict() for f in verdict.findings])
    assert any(f.severity >= Severity.HIGH for f in verdict.findings)


@pytest.mark.parametrize(
    "name",
    sorted(n for n in SAMPLES if n.endswith(".pkl") and "homoglyph" not in n and "fullwidth" not in n),
)
def test_pickle_samples_are_valid_pickles(name):
    """A sample the real unpickler would reject tests nothing: every pickle parses (genops, no load)."""
    ops = list(pickletools.genops(SAMPLES[name]))
    assert ops[-1][0].name == "STOP"


def test_what_fires_for_the_subtle_ones(scan):
    rules = {f.rule for f in scan(SAMPLES["atk_ext1_code.pkl"], "x.pkl").findings}
    assert "pickle.extension" in rules
    rules = {f.rule for f in scan(SAMPLES["atk_tar_symlink.tar"], "x.tar").findings}
    assert "archive.link" in rules
    rules = {f.rule for f in scan(SAMPLES["atk_zip_traversal.zip"], "x.zip").findings}
    assert "archive.path-traversal" in rules
    found = scan(SAMPLES["atk_memo_callable_reuse.pkl"], "x.pkl").findings
    assert any(f.evidence.get("global") == "os.system" for f in found)
