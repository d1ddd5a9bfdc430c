from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tutela.core.errors import MissingExtra, ModelUnavailable
from tutela.core.features import have, require
from tutela.core.models import LOADERS, ModelCache, ModelFormat, ModelRef, sha256_file


@pytest.fixture
def model_pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / f"tutela_test_models_{abs(hash(tmp_path))}"  # unique: resources resolve by imported module
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "thresholds.json").write_text(json.dumps({"low": 0.5, "high": 0.9}))
    monkeypatch.syspath_prepend(str(tmp_path))
    return pkg


def ref(pkg: Path, sha: str | None = None) -> ModelRef:
    return ModelRef(
        name="thresholds",
        version="1",
        sha256=sha or sha256_file(pkg / "thresholds.json"),
        format=ModelFormat.JSON,
        package=pkg.name,
        filename="thresholds.json",
    )


def test_loads_once_and_verifies(model_pkg: Path) -> None:
    cache = ModelCache()
    r = ref(model_pkg)
    assert cache.get(r) == {"low": 0.5, "high": 0.9}
    assert cache.get(r) is cache.get(r)
    assert cache.loaded() == ["thresholds@1"]


def test_tampered_file_is_refused(model_pkg: Path) -> None:
    r = ref(model_pkg)
    (model_pkg / "thresholds.json").write_text(json.dumps({"low": 0.0, "high": 0.0}))
    with pytest.raises(ModelUnavailable, match=r"thresholds@1 .* has sha256 .* expected"):
        ModelCache().get(r)


def test_missing_file_is_refused(model_pkg: Path) -> None:
    (model_pkg / "thresholds.json").unlink()
    with pytest.raises(ModelUnavailable, match="not found"):
        ModelCache().get(ref(model_pkg, sha="0" * 64))


def test_concurrent_first_use_loads_once(model_pkg: Path) -> None:
    calls: list[Path] = []
    gate = threading.Event()

    def slow_json(path: Path) -> object:
        calls.append(path)
        gate.wait(0.2)
        return LOADERS[ModelFormat.JSON](path)

    cache = ModelCache({**LOADERS, ModelFormat.JSON: slow_json})
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(ref(model_pkg)))) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 8 and all(r is results[0] for r in results)


def test_no_pickle_format() -> None:
    assert {f.value for f in ModelFormat} == {"onnx", "lightgbm", "xgboost", "safetensors", "json"}


def test_missing_extra_names_the_extra() -> None:
    assert have("json") and not have("tutela_no_such_module")
    with pytest.raises(MissingExtra, match=r"tutela\[ml\]"):
        require("tutela_no_such_module", "ml")
