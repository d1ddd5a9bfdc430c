from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from tests.core.test_registry import BrokenDetector, WordDetector
from tutela.core.config import load_settings
from tutela.core.errors import ConfigError
from tutela.core.registry import DETECTORS, SETTINGS, DetectorRegistry, Registry


class DnsSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    block_response: str = "nxdomain"
    cache_size: int = 1000


SECTIONS = Registry[type[BaseModel]](SETTINGS, {"dns": DnsSection})
DETS = DetectorRegistry(DETECTORS, {"test.word": WordDetector, "test.broken": BrokenDetector})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tutela.yaml"
    path.write_text(text)
    return path


def load(path: Path | None, env: dict[str, str] | None = None) -> object:
    return load_settings(path, env=env or {"TUTELA_HOME": "/tmp/th"}, detectors=DETS, sections=SECTIONS)


def test_defaults_without_a_file() -> None:
    s = load_settings(None, env={"TUTELA_HOME": "/srv/tutela"}, sections=SECTIONS)
    assert s.home == Path("/srv/tutela") and s.store_path == Path("/srv/tutela/events.duckdb")
    assert s.store.flush_interval <= 1.0
    assert s.policy_for("posture").on_error == "closed" and s.policy_for("dns").on_error == "open"


def test_full_file_validates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
store: {flush_interval: 0.25}
services: {api: {listen: "127.0.0.1:9999"}}
policy:
  runtime:
    on_error: closed
    rules: [{category: word, min_confidence: 0.5, action: redact}]
detectors:
  runtime: [{id: test.word, params: {word: bad}}]
dns: {block_response: refused}
""",
    )
    s = load(path)
    assert s.store.flush_interval == 0.25 and s.service("api").listen == "127.0.0.1:9999"
    assert s.policy_for("runtime").rules[0].action == "redact"
    assert s.detectors["runtime"][0].params["word"] == "bad"
    assert s.sections["dns"].block_response == "refused" and s.config_file == path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stor: {}", r"tutela\.yaml: stor: unknown key"),
        ("store: {flush_intervall: 1}", r"tutela\.yaml: store\.flush_intervall: unknown key"),
        ("store: {flush_interval: 5}", r"store\.flush_interval: Input should be less than or equal to 1"),
        ("dns: {cache_sise: 3}", r"tutela\.yaml: dns\.cache_sise: unknown key"),
        ("detectors: {runtime: [{id: test.nope}]}", r"detectors\.runtime\[0\]\.id: unknown detector 'test\.nope'"),
        ("detectors: {dns: [{id: test.word}]}", r"detectors\.dns\[0\]\.id: detector 'test\.word' belongs to pillar"),
        ("detectors: {runtime: [{id: test.word, params: {wrd: x}}]}", r"detectors\.runtime\[0\].*params\.wrd"),
        ("policy: {dnss: {}}", r"policy\.dnss: unknown pillar"),
        ("policy: {dns: {rules: [{action: explode}]}}", r"policy.*dns.*rules\[0\]\.action"),
        ("- a\n- b", r"top level must be a mapping"),
        ("store: {flush_interval: [1,", r"invalid YAML at line 1"),
    ],
)
def test_bad_config_names_the_key_and_the_file(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load(write(tmp_path, text))
    assert "tutela.yaml" in str(info.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "nope.yaml")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "store: {flush_interval: 0.5}\n")
    s = load(path, {"TUTELA_HOME": str(tmp_path), "TUTELA_STORE__FLUSH_INTERVAL": "0.2", "TUTELA_DNS__CACHE_SIZE": "7"})
    assert s.store.flush_interval == 0.2 and s.sections["dns"].cache_size == 7


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="TUTELA_STROE__X: stroe: unknown key"):
        load(None, {"TUTELA_HOME": "/tmp/x", "TUTELA_STROE__X": "1"})


def test_config_file_from_env_and_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("store: {flush_interval: 0.3}\n")
    assert load(None, {"TUTELA_HOME": str(home)}).store.flush_interval == 0.3
    other = write(tmp_path, "store: {flush_interval: 0.4}\n")
    s = load(None, {"TUTELA_HOME": str(home), "TUTELA_CONFIG": str(other)})
    assert s.store.flush_interval == 0.4
