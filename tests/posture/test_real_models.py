"""Benign models really saved by their libraries: no blocking finding.

torch, Keras (torch backend), xgboost, numpy, scikit-learn, joblib and h5py are used where installed (numpy,
scikit-learn and joblib are dev dependencies; torch, keras and xgboost-cpu are optional); hand-built torch
layouts are covered in test_bypasses.py whatever is installed.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest

from tutela.core.findings import Action, Severity


def _assert_clean(verdict) -> None:
    blocking = [f.to_dict() for f in verdict.findings if f.severity >= Severity.HIGH]
    assert verdict.action != Action.BLOCK and not blocking, blocking


def test_torch_checkpoints(tmp_path: Path, scanner):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters())
    saves = {
        "state_dict.pt": model.state_dict(),
        "full_model.pt": model,
        "checkpoint.pt": {"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3, "dtype": torch.float16},
        "tensors.pt": [torch.arange(10), torch.zeros(2, 3, dtype=torch.bfloat16), torch.ones(3).to_sparse()],
    }
    for name, obj in saves.items():
        torch.save(obj, tmp_path / name)
        _assert_clean(scanner.scan_file(tmp_path / name).verdict)
    torch.save(model.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    _assert_clean(scanner.scan_file(tmp_path / "legacy.pt").verdict)
    scripted = torch.jit.script(nn.Linear(3, 2))
    scripted.save(str(tmp_path / "scripted.pt"))
    _assert_clean(scanner.scan_file(tmp_path / "scripted.pt").verdict)


def test_numpy_files(tmp_path: Path, scanner):
    np = pytest.importorskip("numpy")
    np.save(tmp_path / "a.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    np.savez_compressed(tmp_path / "b.npz", x=np.ones(5), y=np.array(["a", "b"]))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, [1, 2]], dtype=object), allow_pickle=True)
    for name in ("a.npy", "b.npz", "obj.npy"):
        _assert_clean(scanner.scan_file(tmp_path / name).verdict)
    with open(tmp_path / "arrays.pkl", "wb") as fh:
        pickle.dump({"w": np.random.rand(4, 4), "b": np.zeros(4, dtype=np.int64), "s": np.float64(1.5)}, fh, 5)
    _assert_clean(scanner.scan_file(tmp_path / "arrays.pkl").verdict)


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3)])
def test_sklearn_joblib(tmp_path: Path, scanner, compress):
    pytest.importorskip("sklearn")
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x, y = rng.random((60, 4)), rng.integers(0, 2, 60)
    models = {
        "pipe": make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        "forest": RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(x, y),
    }
    for name, model in models.items():
        path = tmp_path / f"{name}.joblib"
        joblib.dump(model, path, compress=compress)
        _assert_clean(scanner.scan_file(path).verdict)
        buf = io.BytesIO()
        pickle.dump(model, buf, protocol=4)
        _assert_clean(scanner.scan_bytes(buf.getvalue(), f"{name}.pkl"))


def test_joblib_with_object_array_is_followed(tmp_path: Path, scanner):
    """joblib writes raw array bytes between pickle opcodes: a payload in an object array is found."""
    pytest.importorskip("joblib")
    import joblib
    import numpy as np

    from tests.posture import corpus

    arr = np.array([1, 2], dtype=object)
    joblib.dump({"w": np.ones(3), "o": arr}, tmp_path / "m.joblib")
    _assert_clean(scanner.scan_file(tmp_path / "m.joblib").verdict)
    data = (tmp_path / "m.joblib").read_bytes()
    evil = data[:-1] + b"0" + corpus.global_call("os", "system")[2:]
    v = scanner.scan_bytes(evil, "m.joblib")
    assert v.action == Action.BLOCK
    assert any(f.evidence.get("global") == "os.system" for f in v.findings)


def test_keras_h5_attrs(tmp_path: Path, scanner):
    h5py = pytest.importorskip("h5py")
    import json

    from tests.posture import corpus

    for name, layers, blocked in (
        ("ok.h5", [corpus.DENSE], False),
        ("lambda.h5", [{"class_name": "Lambda", "config": {"function": ["4wEAAAAA", None, None]}}], True),
    ):
        with h5py.File(tmp_path / name, "w") as f:
            f.attrs["model_config"] = json.dumps(corpus.keras_config(layers))
            f.create_dataset("w", data=[1.0, 2.0])
        v = scanner.scan_file(tmp_path / name).verdict
        assert (v.action == Action.BLOCK) is blocked, [x.to_dict() for x in v.findings]


@pytest.mark.slow
def test_keras_models(tmp_path: Path, scanner, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    inp = keras.Input((4,))
    hidden = keras.layers.Dropout(0.1)(keras.layers.Dense(8, activation="relu")(inp))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(hidden))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "functional.keras")
    model.save(tmp_path / "functional.h5")
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.BatchNormalization()]).save(
        tmp_path / "sequential.keras"
    )
    for name in ("functional.keras", "functional.h5", "sequential.keras"):
        _assert_clean(scanner.scan_file(tmp_path / name).verdict)
    keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 2)]).save(tmp_path / "lambda.keras")
    v = scanner.scan_file(tmp_path / "lambda.keras").verdict
    assert v.action == Action.BLOCK and [f.rule for f in v.findings] == ["keras.lambda"]


def test_xgboost_models(tmp_path: Path, scanner):
    xgb = pytest.importorskip("xgboost")
    import joblib
    import numpy as np

    rng = np.random.default_rng(0)
    clf = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(rng.random((50, 4)), rng.integers(0, 2, 50))
    joblib.dump(clf, tmp_path / "xgb.joblib")
    with open(tmp_path / "xgb.pkl", "wb") as fh:
        pickle.dump(clf, fh)
    clf.save_model(tmp_path / "xgb.json")
    clf.get_booster().save_model(tmp_path / "xgb.ubj")
    for name in ("xgb.joblib", "xgb.pkl", "xgb.json", "xgb.ubj"):
        _assert_clean(scanner.scan_file(tmp_path / name).verdict)


def test_plain_pickle_of_torch_objects(scanner):
    """pickle.dumps of tensors goes through torch.storage._load_from_bytes (a nested torch.save):
    allowed, because its payload is opened and scanned like a file."""
    torch = pytest.importorskip("torch")
    from tests.posture import corpus

    _assert_clean(scanner.scan_bytes(pickle.dumps({"t": torch.ones(3), "m": torch.nn.Linear(2, 2)}), "m.pkl"))
    evil = corpus.torch_zip(corpus.global_call("os", "system"))
    payload = b"\x80\x02ctorch.storage\n_load_from_bytes\nB" + len(evil).to_bytes(4, "little") + evil + b"\x85R."
    v = scanner.scan_bytes(payload, "m.pkl")
    assert any(
        "_load_from_bytes" in f.evidence["member"] and f.evidence.get("global") == "os.system" for f in v.findings
    )


@pytest.mark.slow
def test_many_sklearn_estimators(scanner):
    """A sweep over scikit-learn's own estimators: pickled at protocols 2 and 5, no blocking finding."""
    pytest.importorskip("sklearn")
    import warnings

    import numpy as np
    from sklearn.utils import all_estimators

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 4)), rng.integers(0, 2, 40)
    checked = 0
    for _, cls in all_estimators(type_filter=["classifier", "transformer"])[::6]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = cls().fit(x, y)
        except Exception:  # estimators that need special arguments
            continue
        for proto in (2, 5):
            _assert_clean(scanner.scan_bytes(pickle.dumps(est, protocol=proto), f"{cls.__name__}.pkl"))
        checked += 1
    assert checked >= 10
