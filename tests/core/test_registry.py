"""The registry contract: entry points feed it, ids are checked, loading is lazy, overrides are local."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tutela.core.detector import Detector, DetectorConfig, ScanContext
from tutela.core.errors import ConfigError
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.core.pipeline import DetectorSpec, Pipeline
from tutela.core.policy import Policy, PolicyConfig
from tutela.core.registry import DETECTORS, DetectorRegistry, Registry


class WordConfig(DetectorConfig):
    word: str = "evil"
    severity: str = "high"


class WordDetector:
    id: ClassVar[str] = "test.word"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "runtime"
    categories: ClassVar[tuple[str, ...]] = ("word",)
    description: ClassVar[str] = "finds a word"
    Config: ClassVar[type[DetectorConfig]] = WordConfig

    def __init__(self, config: WordConfig, models: ModelCache) -> None:
        self.config = config

    def detect(self, subject: str, ctx: ScanContext) -> Iterable[Finding]:
        i = subject.find(self.config.word)
        if i >= 0:
            yield Finding(
                detector=self.id,
                detector_version=self.version,
                rule="word",
                category="word",
                severity=Severity.parse(self.config.severity),
                confidence=1.0,
                message="word found",
            )


class BrokenDetector(WordDetector):
    id: ClassVar[str] = "test.broken"

    def detect(self, subject: str, ctx: ScanContext) -> Iterable[Finding]:
        raise RuntimeError("model exploded")


def registry() -> DetectorRegistry:
    return DetectorRegistry(DETECTORS, {"test.word": WordDetector, "test.broken": BrokenDetector})


def test_detector_satisfies_protocol() -> None:
    det = WordDetector(WordConfig(), ModelCache())
    assert isinstance(det, Detector)


def test_unknown_id_is_a_config_error_listing_known_ids() -> None:
    with pytest.raises(ConfigError, match=r"unknown detector id 'nope'.*test\.word"):
        registry().get("nope")


def test_describe_comes_from_the_class() -> None:
    info = registry().describe("test.word")
    assert info["pillar"] == "runtime" and info["categories"] == ["word"]
    assert info["config"]["properties"]["word"]["default"] == "evil"
    assert registry().for_pillar("runtime") == ["test.broken", "test.word"]


def test_entry_point_name_must_equal_class_id() -> None:
    reg = DetectorRegistry(DETECTORS, {"test.alias": WordDetector})
    with pytest.raises(ConfigError, match="must equal the class id"):
        reg.get("test.alias")


def test_override_is_a_copy() -> None:
    base = registry()
    other = base.override({"test.extra": WordDetector})
    assert "test.extra" in other and "test.extra" not in base


def test_entry_points_are_discovered_and_imported_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "tutela_test_plugin.py"
    pkg.write_text(
        textwrap.dedent("""
        LOADED = True
        THING = {"hello": "world"}
    """)
    )
    dist = tmp_path / "tutela_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tutela-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tutela.test_group]\nthing = tutela_test_plugin:THING\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry[Any].from_entry_points("tutela.test_group")
    assert reg.names() == ["thing"]
    assert "tutela_test_plugin" not in sys.modules
    assert reg.get("thing") == {"hello": "world"}
    assert "tutela_test_plugin" in sys.modules


def test_pipeline_builds_from_specs_and_validates_params() -> None:
    specs = [DetectorSpec(id="test.word", params={"word": "bad"}), DetectorSpec(id="test.broken", enabled=False)]
    pipe = Pipeline.build(registry(), specs, Policy(), ModelCache())
    assert [d.id for d in pipe.detectors] == ["test.word"]
    assert pipe.run("a bad thing").action == "block"
    assert pipe.run("all good").action == "allow"
    with pytest.raises(ConfigError, match=r"test\.word params\.wrod"):
        Pipeline.build(registry(), [DetectorSpec(id="test.word", params={"wrod": "x"})], Policy(), ModelCache())


def test_detector_failure_is_recorded_and_fails_open_or_closed() -> None:
    specs = [DetectorSpec(id="test.broken"), DetectorSpec(id="test.word")]
    open_pipe = Pipeline.build(registry(), specs, Policy(PolicyConfig(on_error="open")), ModelCache())
    v = open_pipe.run("evil")
    assert v.action == "block" and v.failures[0].detector == "test.broken" and "exploded" in v.failures[0].message
    v = open_pipe.run("fine")
    assert v.action == "allow" and len(v.failures) == 1
    closed = Pipeline.build(registry(), specs, Policy(PolicyConfig(on_error="closed")), ModelCache())
    assert closed.run("fine").action == "block"
