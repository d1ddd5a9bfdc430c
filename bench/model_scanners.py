"""tutela's model scanner side by side with picklescan, modelscan and fickling (issues 8 and 9).

    .venv/bin/python bench/model_scanners.py [--size-mb 300] [--repeat 5] [--startup-runs 11]
    python -m bench.run model_scanners [--quick]

Peers run from their own environment (bench/envs/models.txt, `python -m bench.envs models`).
Measures, writing bench/results/model_scanners.json through bench.report.write_result:
- detection on the project's corpus (tests/posture/corpus.py: hand-built malicious and benign files,
  written to bench/work/models/, plus benign models really saved by numpy, scikit-learn, joblib,
  torch, xgboost, Keras and h5py where installed): detected / missed / false positives. tutela
  counts a file as detected only at blocking severity (high/critical); a peer with any issue.
- throughput (MB/s) on a ~300 MB plain pickle (numpy arrays) and a ~300 MB PyTorch checkpoint
  saved by torch.save: every scanner in-process over the same file, rounds interleaved
  (tutela, picklescan, modelscan, fickling, then again), warm page cache.
- start-up: wall time of each tool's command line scanning one tiny pickle, interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.envs import peer_python  # noqa: E402
from bench.report import Table, package_versions, spread, write_result  # noqa: E402

WORK = ROOT / "bench" / "work" / "models"
PEER_NAMES = ("picklescan", "modelscan", "fickling")
SCANNERS = ("tutela", *PEER_NAMES)


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


def peer_scan(name: str, files: list[Path], repeat: int, timeout: float = 1200) -> dict[str, dict[str, object]]:
    cmd = [str(peer_python("models")), str(ROOT / "bench" / "_peer_runner.py"), name, str(repeat), *map(str, files)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return json.loads(res.stdout or "{}")
    except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        return {str(f): {"detected": False, "error": f"runner failed: {exc}", "seconds": [timeout]} for f in files}


def scan_with(name: str, files: list[Path], repeat: int = 1) -> dict[str, dict[str, object]]:
    return tutela_scan(files, repeat) if name == "tutela" else peer_scan(name, files, repeat)


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


def pickle_part_mb(path: Path) -> float:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return sum(i.file_size for i in z.infolist() if i.filename.endswith(".pkl")) / 1e6


def detection(mal: list[Path], ben: list[Path]) -> dict[str, dict[str, object]]:
    out = {}
    for name in SCANNERS:
        res = scan_with(name, mal + ben)
        detected = [f.name for f in mal if res.get(str(f), {}).get("detected")]
        fps = [f.name for f in ben if res.get(str(f), {}).get("detected")]
        errors = {f.name: r["error"] for f in mal + ben if (r := res.get(str(f), {})).get("error")}
        out[name] = {
            "detected": len(detected),
            "missed": sorted(f.name for f in mal if f.name not in detected),
            "false_positives": fps,
            "errors": errors,
        }
        print(
            f"{name:11s} detected {len(detected)}/{len(mal)}  false positives {len(fps)}/{len(ben)} {fps}", flush=True
        )
    return out


def throughput(path: Path, repeat: int) -> dict[str, dict[str, object]]:
    """Interleaved rounds: each round scans the file once with every scanner, in turn."""
    mb = path.stat().st_size / 1e6
    path.read_bytes()  # warm the page cache
    seconds: dict[str, list[float]] = {n: [] for n in SCANNERS}
    errors: dict[str, str | None] = {n: None for n in SCANNERS}
    for _ in range(repeat):
        for name in SCANNERS:
            r = scan_with(name, [path])[str(path)]
            seconds[name].extend(r["seconds"])
            errors[name] = errors[name] or r["error"]
    out = {}
    for name in SCANNERS:
        s = spread(seconds[name])
        out[name] = {"mb": round(mb, 1), "seconds": s, "mb_per_s": mb / s["median"], "error": errors[name]}
        print(f"{path.name:18s} {mb:7.1f} MB {name:11s} {s['median']:8.3f} s {mb / s['median']:9.1f} MB/s", flush=True)
    return out


def startup(runs: int) -> dict[str, dict[str, dict[str, float]]]:
    """Wall and CPU time of each command line scanning one tiny pickle, in interleaved rounds."""
    import resource

    tiny = ROOT / "bench" / "work" / "tiny.pkl"
    tiny.write_bytes(pickle.dumps({"w": [1.0, 2.0], "lr": 0.1}, protocol=4))
    home = Path(tempfile.mkdtemp(prefix="tutela-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUTELA_")} | {"TUTELA_HOME": str(home)}
    # Installed packages carry compiled bytecode; an editable checkout run with PYTHONDONTWRITEBYTECODE=1
    # (as on this machine) would recompile tutela at every start. Compile once, as pip does at install.
    compile_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "tutela")], env=compile_env, check=False
    )
    bindir = Path(sys.executable).parent
    peer_bin = peer_python("models").parent
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "tutela posture scan-models": [str(bindir / "tutela"), "posture", "scan-models", str(tiny)],
        "tutela --help": [str(bindir / "tutela"), "--help"],
        "picklescan -p": [str(peer_bin / "picklescan"), "-p", str(tiny)],
        "modelscan -p": [str(peer_bin / "modelscan"), "-p", str(tiny)],
        "fickling --check-safety": [
            str(peer_bin / "fickling"),
            "--check-safety",
            "--json-output",
            str(home / "f.json"),
            str(tiny),
        ],
    }
    wall: dict[str, list[float]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(runs):
        for label, cmd in commands.items():
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, check=False, env=env)
            wall[label].append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[label].append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"{label} failed ({proc.returncode}): {proc.stderr[-500:]!r}")
    out = {k: {"wall": spread(wall[k]), "cpu": spread(cpu[k])} for k in commands}
    for k, s in out.items():
        w, c = s["wall"], s["cpu"]
        print(f"start-up {k:28s} wall {w['median']:.3f} s ({w['min']:.3f}-{w['max']:.3f}) cpu {c['median']:.3f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved throughput rounds")
    ap.add_argument("--startup-runs", type=int, default=11)
    args = ap.parse_args()
    started = time.monotonic()
    mal, ben = write_corpus()
    det = detection(mal, ben)
    plain, zipped = make_big(args.size_mb)
    thr = {"plain": throughput(plain, args.repeat)}
    torch_pickle_mb = None
    if zipped is not None:
        thr["torch"] = throughput(zipped, args.repeat)
        torch_pickle_mb = pickle_part_mb(zipped)
    boot = startup(args.startup_runs)

    fastest_peer = max(PEER_NAMES, key=lambda n: thr["plain"][n]["mb_per_s"] if not thr["plain"][n]["error"] else 0)
    t_plain, p_plain = thr["plain"]["tutela"]["mb_per_s"], thr["plain"][fastest_peer]["mb_per_s"]
    rows_det = [
        [
            n,
            f"{d['detected']}/{len(mal)}",
            len(d["missed"]),
            f"{len(d['false_positives'])}/{len(ben)}",
            len(d["errors"]),
        ]
        for n, d in det.items()
    ]
    rows_thr = []
    for key, label in (("plain", "plain pickle (numpy arrays)"), ("torch", "PyTorch checkpoint (torch.save)")):
        if key not in thr:
            continue
        for n in SCANNERS:
            r = thr[key][n]
            s = r["seconds"]
            rows_thr.append(
                [
                    label,
                    r["mb"],
                    n,
                    round(s["median"], 4),
                    f"{s['min']:.4f}–{s['max']:.4f}",
                    round(r["mb_per_s"], 1),
                    f"{thr[key]['tutela']['mb_per_s'] / r['mb_per_s']:.1f}×" if n != "tutela" else "1×",
                    (r["error"] or "")[:80],
                ]
            )
    rows_boot = [
        [
            k,
            round(s["wall"]["median"], 3),
            f"{s['wall']['min']:.3f}–{s['wall']['max']:.3f}",
            round(s["cpu"]["median"], 3),
        ]
        for k, s in boot.items()
    ]
    tut_boot = boot["tutela posture scan-models"]["wall"]["median"]
    tut_cpu = boot["tutela posture scan-models"]["cpu"]["median"]
    versions = package_versions(["tutela", "torch", "numpy"]) | package_versions(
        list(PEER_NAMES), python=str(peer_python("models"))
    )
    misses = {n: d["missed"] for n, d in det.items()}
    notes = [
        "Misses per scanner (file names from tests/posture/corpus.py): "
        + "; ".join(f"{n}: {', '.join(m) or 'none'}" for n, m in misses.items()),
        "False positives per scanner: "
        + "; ".join(f"{n}: {', '.join(d['false_positives']) or 'none'}" for n, d in det.items()),
    ]
    notes.append(
        "How each peer is called (bench/_peer_runner.py): picklescan `scan_file_path` (with its 7z extra), modelscan "
        "`ModelScan().scan`, fickling `is_likely_safe` for plain files and `scan_zip_archive` for zips (PyTorch "
        "checkpoints); a fickling verdict other than LIKELY_SAFE counts as a detection, and fickling rates every "
        "import outside the standard library (torch's own rebuild functions included) as likely unsafe, which is "
        "where its false positives on benign files come from."
    )
    if torch_pickle_mb is not None:
        notes.append(
            f"The PyTorch checkpoint holds {torch_pickle_mb:.3f} MB of pickle (data.pkl) beside its raw tensor "
            "bytes: tutela parses the pickle and only sniffs the head of each tensor file, so its time follows the "
            "pickle part, not the file size (issue 8 target)."
        )
    path = write_result(
        "model_scanners",
        started=started,
        title="Model files: tutela vs picklescan, modelscan and fickling",
        issue=8,
        command=(
            f".venv/bin/python bench/model_scanners.py --size-mb {args.size_mb} --repeat {args.repeat} "
            f"--startup-runs {args.startup_runs}"
        ),
        target=(
            "every file of the malicious corpus at blocking severity; no false positive at blocking severity on "
            "benign models; MB/s on a ~300 MB pickle at least that of the fastest peer; start-up <= 0.5 s"
        ),
        about=(
            f"Detection: every scanner over the project's corpus ({len(mal)} malicious files built in "
            f"tests/posture/corpus.py with harmless payloads, {len(ben)} benign ones, including models really saved "
            "by numpy, scikit-learn, joblib, torch and xgboost where installed); tutela counts only blocking "
            "severity (high/critical), a peer any issue it reports. Throughput: each scanner's Python API "
            "in-process on the same files, warm page cache, rounds interleaved across scanners. Start-up: the "
            "command line scanning one tiny pickle (tutela with its default settings, writing its event)."
        ),
        tables=[
            Table(
                "Detection on the project's corpus",
                ["scanner", "detected", "missed", "false positives", "errors"],
                rows_det,
            ),
            Table(
                f"Throughput, {args.repeat} interleaved rounds (tutela vs fastest peer on the plain pickle: "
                f"{t_plain:,.0f} vs {p_plain:,.0f} MB/s, {'met' if t_plain >= p_plain else 'missed'})",
                ["file", "MB", "scanner", "median s", "min–max s", "MB/s", "tutela ×", "error"],
                rows_thr,
            ),
            Table(
                f"Start-up, {args.startup_runs} interleaved rounds (tutela {tut_boot:.3f} s wall, {tut_cpu:.3f} s "
                f"CPU: {'met' if tut_boot <= 0.5 else 'missed'} against 0.5 s wall on this shared machine)",
                ["command", "median wall s", "min–max wall s", "median CPU s (user+sys)"],
                rows_boot,
                note=(
                    "Each command scans one tiny pickle (tutela with default settings, writing its event). "
                    "Wall time on this shared 2-core VM is inflated by other engineers' load; CPU time (user+sys "
                    "of the child) is the steadier figure, and is close to wall time on an idle machine."
                ),
            ),
        ],
        notes=notes,
        not_measured=[
            "the independent held-back corpus of issue 8 (not available to us); only the project's own corpus",
            "peers' other formats where tutela has no equivalent in this corpus (e.g. modelscan's Keras/TF "
            "scanners are exercised only by the few .keras/.h5/.pb samples here)",
            "fickling's decompiler, tracing and injection features, and modelscan's reporting/settings: only "
            "their safety verdicts are compared",
            "cold page cache and files larger than memory",
            "memory use of each scanner",
        ],
        versions=versions,
        raw={
            "detection": det,
            "throughput": thr,
            "startup": boot,
            "torch_pickle_mb": torch_pickle_mb,
            "malicious": len(mal),
            "benign": len(ben),
        },
    )
    print(path)


if __name__ == "__main__":
    main()
