"""Shipped model files: pinned by sha256, JSON only, evaluated exactly like LightGBM would."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import tutela
from tutela.core.errors import ModelUnavailable
from tutela.core.models import ModelCache, sha256_file
from tutela.dns import models as refs
from tutela.dns.forest import Forest, ForestError, to_compact
from tutela.dns.lexical import DGA_FEATURES, TUNNEL_FEATURES


@pytest.mark.parametrize("ref", refs.ALL, ids=lambda r: r.name)
def test_model_loads_and_matches_its_pin(ref, models):
    assert sha256_file(ref.path()) == ref.sha256
    spec = models.get(ref)
    assert isinstance(spec, dict)
    if ref in (refs.DGA_CNN, refs.DGA_CNN2):
        assert spec["emb.weight"].dtype.name == "float32" and spec["emb.weight"].shape[0] == 43
    elif ref is refs.DGA_CNN_META:
        assert spec["version"] == "4" and "data_sha256" in spec and spec["training"]["seed"] == 7
        assert spec["stage2"]["weights_sha256"] == refs.DGA_CNN2.sha256
    elif ref is not refs.LEXICON:
        forest = Forest(spec)
        assert forest.feature_names in (DGA_FEATURES, TUNNEL_FEATURES, (*DGA_FEATURES, "suffix_code"))
        assert "data_sha256" in spec["meta"] and spec["meta"]["seed"] == 7


def test_tampered_pin_is_refused():
    bad = dataclasses.replace(refs.DGA, sha256="0" * 64)
    with pytest.raises(ModelUnavailable, match="sha256"):
        ModelCache().get(bad)


def test_thresholds_are_stored_with_the_models(models):
    for meta in (models.get(refs.DGA)["meta"], models.get(refs.TUNNEL)["meta"], models.get(refs.DGA_CNN_META)):
        t = meta["thresholds"]
        assert 0 < t["low"] <= t["medium"] <= t["high"] < 1
        assert meta["level_fpr"]["high"] < meta["level_fpr"]["low"]


def test_no_pickle_in_the_package():
    root = Path(tutela.__file__).parent
    bad = [p for p in root.rglob("*") if p.suffix in {".pkl", ".pickle", ".joblib", ".pt", ".npy", ".npz"}]
    assert bad == []
    for p in (root / "dns" / "models").iterdir():
        if p.suffix == ".json":
            head = p.read_bytes()[:1]
            assert head == b"{", p  # JSON text, not a pickle stream (b"\x80")


def test_forest_matches_lightgbm():
    lgb = pytest.importorskip("lightgbm")
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 5))
    y = ((X[:, 0] + X[:, 1] * X[:, 2]) > 0.3).astype(int)
    params = {"objective": "binary", "num_leaves": 15, "use_missing": False, "verbosity": -1, "seed": 1,
              "deterministic": True, "num_threads": 1}  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(X, label=y), 30)
    forest = Forest(json.loads(json.dumps(to_compact(booster.dump_model(), [f"f{i}" for i in range(5)]))))
    expected = booster.predict(X[:200], raw_score=True)
    assert np.allclose(forest.raw_batch(X[:200])[:, 0], expected, atol=1e-9)
    assert all(abs(forest.raw_one(list(x))[0] - e) < 1e-9 for x, e in zip(X[:50], expected, strict=False))
    y3 = y + (X[:, 3] > 1)
    multi = lgb.train({**params, "objective": "multiclass", "num_class": 3}, lgb.Dataset(X, label=y3), 10)
    f3 = Forest(to_compact(multi.dump_model(), [f"f{i}" for i in range(5)]))
    assert np.allclose(f3.proba_batch(X[:100]), multi.predict(X[:100]), atol=1e-9)
    assert np.allclose(f3.proba_one(list(X[0])), multi.predict(X[:1])[0], atol=1e-9)


def test_forest_rejects_malformed_specs():
    tree = {"class": 0, "split": [0], "threshold": [0.5], "left": [-1], "right": [-2], "leaf": [0.1, 0.2]}
    good = {"format": "tutela-forest/1", "num_class": 1, "feature_names": ["a"], "trees": [tree]}
    assert Forest(good).raw_one([0.0]) == [0.1]
    for key, value in (("split", [3]), ("left", [7]), ("threshold", ["__import__('os')"]), ("leaf", [float("nan"), 1])):
        bad = json.loads(json.dumps(good))
        bad["trees"][0][key] = value
        with pytest.raises((ForestError, ValueError)):
            Forest(bad).raw_one([0.0])


def test_import_tutela_dns_stays_light():
    code = (
        "import sys, tutela.dns, tutela.dns.detectors.dga, tutela.dns.detectors.tunnel, tutela.dns.scoring;"
        "bad = [m for m in ('lightgbm', 'sklearn', 'torch', 'onnxruntime', 'numpy') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_derived_objects_are_built_once_per_cache():
    cache = ModelCache()
    calls = []

    def build(spec):
        calls.append(1)
        return Forest(spec)

    first = cache.derived(refs.TUNNEL, "forest", build)
    assert cache.derived(refs.TUNNEL, "forest", build) is first
    assert len(calls) == 1
    assert cache.loaded() == [refs.TUNNEL.key]
