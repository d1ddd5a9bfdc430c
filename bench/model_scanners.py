"""tutela's model scanner side by side with picklescan, modelscan and fickling.

    .venv/bin/python bench/model_scanners.py [--size-mb 300] [--repeat 3]

Peers live in their own environment (created once, gitignored):
    python3 -m venv bench/.venv-peers
    bench/.venv-peers/bin/pip install picklescan==1.0.5 modelscan==0.8.8 fickling==0.1.12 numpy

Measures, on the project's corpus (tests/posture/corpus.py, written to bench/work/models/ together
with benign models really saved by torch, numpy, scikit-learn, joblib and h5py where installed):
detected / missed malicious files and false positives on benign ones; then MB/s on a ~300 MB
plain pickle and a ~300 MB PyTorch zip (median of --repeat runs, warm page cache, in-process
for every scanner) and CLI start-up time (median of 5 `--help` runs). tutela counts as
detecting a file only at blocking severity (high/critical); peers count with any issue.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = ROOT / "bench" / "work" / "models"
PEERS = ROOT / "bench" / ".venv-peers" / "bin"
PEER_NAMES = ("picklescan", "modelscan", "fickling")


def write_corpus() -> tuple[list[Path], list[Path]]:
    from tests.posture import corpus

    mal_dir, ben_dir = WORK / "malicious", WORK / "benign"
    for d in (mal_dir, ben_dir):
        d.mkdir(parents=True, exist_ok=True)
    for name, data in corpus.malicious().items():
        (mal_dir / name).write_bytes(data)
    for name, data in corpus.benign().items():
        (ben_dir / name).write_bytes(data)
    _real_benign(ben_dir)
    return sorted(mal_dir.iterdir()), sorted(ben_dir.iterdir())


def _real_benign(d: Path) -> None:
    try:
        import numpy as np

        np.save(d / "real_array.npy", np.arange(100, dtype=np.float32))
        np.savez_compressed(d / "real_arrays.npz", a=np.ones(10), b=np.zeros(3))
        with open(d / "real_numpy_dict.pkl", "wb") as fh:
            pickle.dump({"w": np.random.rand(8, 8), "n": np.int64(3)}, fh, protocol=4)
    except ImportError:
        pass
    try:
        import joblib
        import numpy as np
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        rng = np.random.default_rng(0)
        x, y = rng.random((80, 4)), rng.integers(0, 2, 80)
        joblib.dump(make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y), d / "real_sklearn_pipe.joblib")
        rf = RandomForestClassifier(n_estimators=4, max_depth=4, random_state=0).fit(x, y)
        joblib.dump(rf, d / "real_sklearn_forest.joblib", compress=3)
        with open(d / "real_sklearn_forest.pkl", "wb") as fh:
            pickle.dump(rf, fh, protocol=4)
    except ImportError:
        pass
    try:
        import torch

        model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        torch.save(model.state_dict(), d / "real_torch_state_dict.pt")
        torch.save(model, d / "real_torch_full_model.pth")
        torch.save(model.state_dict(), d / "real_torch_legacy.pt", _use_new_zipfile_serialization=False)
        torch.jit.script(model).save(str(d / "real_torchscript.pt"))
    except ImportError:
        pass
    try:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras

        inp = keras.Input((4,))
        model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8)(inp)))
        model.save(d / "real_keras_functional.keras")
        model.save(d / "real_keras_functional.h5")
    except ImportError:
        pass
    try:
        import numpy as np
        import xgboost as xgb

        rng = np.random.default_rng(0)
        clf = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(rng.random((50, 4)), rng.integers(0, 2, 50))
        clf.save_model(d / "real_xgboost.json")
        with open(d / "real_xgboost_sklearn.pkl", "wb") as fh:
            pickle.dump(clf, fh)
    except ImportError:
        pass
    try:
        import h5py
        from tests.posture import corpus

        with h5py.File(d / "real_keras_like.h5", "w") as f:
            f.attrs["model_config"] = json.dumps(corpus.keras_config([corpus.DENSE]))
            f.create_dataset("w", data=[1.0, 2.0])
    except ImportError:
        pass


def tutela_scan(files: list[Path], repeat: int) -> dict[str, dict[str, object]]:
    from tutela.core.findings import Action
    from tutela.posture.scanner import ModelScanner

    scanner = ModelScanner()
    out: dict[str, dict[str, object]] = {}
    for f in files:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            v = scanner.scan_file(f).verdict
            times.append(time.perf_counter() - t0)
        out[str(f)] = {"detected": v.action == Action.BLOCK, "error": None, "seconds": times}
    return out


def peer_scan(name: str, files: list[Path], repeat: int, timeout: float = 900) -> dict[str, dict[str, object]]:
    py = PEERS / "python"
    cmd = ["nice", str(py), str(ROOT / "bench" / "_peer_runner.py"), name, str(repeat), *map(str, files)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return json.loads(res.stdout or "{}")
    except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        return {str(f): {"detected": False, "error": f"runner failed: {exc}", "seconds": [timeout]} for f in files}


def make_small_objects() -> Path:
    """The pure-Python worst case: ~12 MB of tiny objects (a vocabulary and a float list)."""
    import random

    path = ROOT / "bench" / "work" / "big" / "small_objects.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        rnd = random.Random(0)
        obj = {"vocab": {f"tok{i}": i for i in range(400_000)}, "floats": [rnd.random() for _ in range(600_000)]}
        path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def make_big(size_mb: int) -> tuple[Path, Path | None]:
    import numpy as np

    big = ROOT / "bench" / "work" / "big"
    big.mkdir(parents=True, exist_ok=True)
    plain = big / f"state_{size_mb}mb.pkl"
    n = size_mb * (1 << 20) // 4 // 64
    if not plain.exists():
        arrays = {f"layer{i}.weight": np.random.rand(n // 64, 64).astype(np.float32) for i in range(64)}
        with open(plain, "wb") as fh:
            pickle.dump(arrays, fh, protocol=4)
    zipped = big / f"state_{size_mb}mb.pt"
    if not zipped.exists():
        try:
            import torch
        except ImportError:
            return plain, None
        torch.save({f"layer{i}.weight": torch.rand(n // 64, 64) for i in range(64)}, zipped)
    return plain, zipped


def startup(cmd: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-detection", action="store_true")
    ap.add_argument("--sets", default="plain,torch,small", help="throughput files: plain, torch, small")
    args = ap.parse_args()
    have_peers = (PEERS / "python").exists()
    mal, ben = write_corpus()
    report: dict[str, object] = {"malicious": len(mal), "benign": len(ben), "detection": {}, "misses": {}}
    scanners = ["tutela", *(PEER_NAMES if have_peers else ())]
    for name in [] if args.skip_detection else scanners:
        res = tutela_scan(mal + ben, 1) if name == "tutela" else peer_scan(name, mal + ben, 1)
        det = [f for f in mal if res.get(str(f), {}).get("detected")]
        fps = [f.name for f in ben if res.get(str(f), {}).get("detected")]
        report["detection"][name] = {"detected": len(det), "missed": len(mal) - len(det), "false_positives": fps}
        report["misses"][name] = sorted(f.name for f in mal if f not in det)
        print(f"{name:11s} detected {len(det)}/{len(mal)}  false positives {len(fps)}/{len(ben)} {fps}", flush=True)
    if not args.skip_throughput:
        sets = args.sets.split(",")
        plain, zipped = make_big(args.size_mb) if {"plain", "torch"} & set(sets) else (None, None)
        small = make_small_objects() if "small" in sets else None
        report["throughput"] = {}
        for key, label, path in (
            ("plain", "plain pickle", plain),
            ("torch", "torch zip", zipped),
            ("small", "small objects", small),
        ):
            if path is None or key not in sets:
                continue
            mb = path.stat().st_size / 1e6
            path.read_bytes()  # warm the page cache
            row = {}
            for name in scanners:
                res = tutela_scan([path], args.repeat) if name == "tutela" else peer_scan(name, [path], args.repeat)
                r = res[str(path)]
                med = statistics.median(r["seconds"])
                row[name] = {"seconds": round(med, 4), "mb_per_s": round(mb / med, 1), "error": r["error"]}
                print(
                    f"{label:12s} {mb:7.1f} MB {name:11s} {med:8.3f} s {mb / med:9.1f} MB/s {r['error'] or ''}",
                    flush=True,
                )
            report["throughput"][label] = {"mb": round(mb, 1), **row}
    report["startup_s"] = {
        "tutela": round(startup([sys.executable, "-m", "tutela", "posture", "scan-models", "--help"]), 3)
    }
    if have_peers:
        for name in PEER_NAMES:
            report["startup_s"][name] = round(startup([str(PEERS / name), "--help"]), 3)
    print("start-up (median of 5, --help):", report["startup_s"], flush=True)
    out = (
        ROOT
        / "bench"
        / "work"
        / f"model_scanners{'-' + args.sets.replace(',', '-') if args.skip_detection else ''}.json"
    )
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}; machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} (shared)")


if __name__ == "__main__":
    main()
