"""Inline cost of dns.dga + dns.tunnel, an earlier commit vs the working tree, in ONE process.

    .venv/bin/python scripts/dns_cost_ab.py --rev 52360cd [--reps 3]

On a shared machine, load drifts by tens of percent between runs, so two bench runs cannot show a 10%
change. This imports the earlier commit's package as `tutela_before` (git archive, imports rewritten) next
to the working tree's `tutela`, builds both sides' detectors as the sensor does (one model cache, the
shared splitter's class), and feeds them the same queries of bench/dns_models.py's streams, interleaved
in chunks of 100 (order alternating), timing CPU (thread_time). Beside the detectors alone, flagged names are
also timed with their verdict and EventWriter.append() (the sensor's query path for a blocked name) and with
every finding's to_dict() (the total, deferred work included). Both sides' models live in one process,
so absolute figures are higher than a bench run's (twice the working set in the CPU caches); the ratios
are the result. A development tool, not a suite benchmark (it writes no bench/results file).

C extensions (tutela/_native/*.c) are built for the exported commit too, with setup.py's flags, so each side runs
what it would run installed; the header says which path (C or Python) each side's DNS features and CNN took.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import random
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))


def export(rev: str, into: Path) -> None:
    """src/tutela at `rev` -> into/tutela_before, with every `tutela.` import and module string renamed."""
    blob = subprocess.run(["git", "archive", rev, "src/tutela"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    pkg = into / "tutela_before"
    (into / "src" / "tutela").rename(pkg)
    for path in pkg.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\btutela\.", "tutela_before.", text)
        text = re.sub(r"^(\s*)(from|import) tutela\b", r"\1\2 tutela_before", text, flags=re.M)
        path.write_text(text, encoding="utf-8")
    sources = sorted((pkg / "_native").glob("*.c"))
    if sources:  # build them next to their sources, as `setup.py build_ext --inplace` does for the working tree
        from setuptools import Distribution, Extension

        exts = [Extension(f"tutela_before._native.{c.stem}", [str(c)], extra_compile_args=["-O2"]) for c in sources]
        cmd = Distribution({"ext_modules": exts}).get_command_obj("build_ext")
        cmd.build_lib, cmd.build_temp = str(into), str(into / "build")
        cmd.ensure_finalized()
        cmd.run()


def native_path(pkg: str) -> str:
    """Which path the side's tunnel features take: "C" or "Python"."""
    lexical = importlib.import_module(f"{pkg}.dns.lexical")
    return "C" if getattr(lexical, "_NATIVE", None) is not None else "Python"


def side(pkg: str) -> dict[str, Any]:
    mod = {n: importlib.import_module(f"{pkg}.{n}") for n in ("core.models", "core.detector", "dns.scoring",
           "dns.detectors.dga", "dns.detectors.tunnel", "dns.subjects", "core.policy", "dns.policy",
           "core.store.writer")}  # fmt: skip
    models = mod["core.models"].ModelCache()
    splitter_cls = type(mod["dns.scoring"].shared_splitter(models))
    dga, tun = mod["dns.detectors.dga"], mod["dns.detectors.tunnel"]
    warm = dga.DgaDetector(dga.DgaConfig(), models)
    warm.warmup()
    tun.TunnelDetector(tun.TunnelConfig(), models).warmup()

    def build() -> tuple[Any, Any]:
        sp = splitter_cls()
        sp.warmup()
        d = dga.DgaDetector(dga.DgaConfig(), models, sp)
        getattr(d, "forget_verdicts", lambda: None)()  # verdicts are shared per ModelCache since dns.dga_session
        return d, tun.TunnelDetector(tun.TunnelConfig(), models, sp)

    def writer() -> Any:  # never started nor flushed, so it writes nothing: append() only buffers
        return mod["core.store.writer"].EventWriter(Path(tempfile.gettempdir()) / "unused", ingest_interval=None)

    policy = mod["core.policy"].Policy(mod["dns.policy"].default_policy())
    charcnn = importlib.import_module(f"{pkg}.dns.charcnn")
    cnn = charcnn.path() if hasattr(charcnn, "path") else "numpy"
    return {"build": build, "ctx": mod["core.detector"].ScanContext(), "Q": mod["dns.subjects"].DnsQuery,
            "splitter": splitter_cls.__name__, "policy": policy, "writer": writer,
            "path": native_path(pkg), "cnn": cnn}  # fmt: skip


def run_pair(
    sides: dict[str, dict[str, Any]], stream: list[str], passes: int, chunk: int = 100, mode: str = "detect"
) -> list[dict]:
    """µs per query on each side. mode "detect": both detectors; "read": every finding's to_dict() too (the
    total, where a finding computes its message and evidence on first read); "event": the sensor's query path
    for a flagged name, detectors + the default policy's verdict + EventWriter.append() of that verdict."""
    dets = {s: v["build"]() for s, v in sides.items()}
    writers = {s: v["writer"]() for s, v in sides.items()} if mode == "event" else {}
    qs = {s: [v["Q"](name=n, qtype=1, client="10.0.0.1") for n in stream] for s, v in sides.items()}
    out = []
    for _ in range(passes):
        tot = dict.fromkeys(sides, 0.0)
        gc.collect()
        gc.freeze()
        for i in range(0, len(stream), chunk):
            order = list(sides) if (i // chunk) % 2 == 0 else list(sides)[::-1]
            for s in order:
                dga, tun = dets[s]
                ctx = sides[s]["ctx"]
                start = time.thread_time()
                if mode == "read":
                    for q in qs[s][i : i + chunk]:
                        for f in (*dga.detect(q, ctx), *tun.detect(q, ctx)):
                            f.to_dict()
                elif mode == "event":
                    decide, append = sides[s]["policy"].decide, writers[s].append
                    for q in qs[s][i : i + chunk]:
                        found = (*dga.detect(q, ctx), *tun.detect(q, ctx))
                        verdict = decide(found) if found else decide()
                        if found:
                            append("dns", verdict, source=q.client, subject=q.name, attrs={"qtype": q.qtype})
                else:
                    for q in qs[s][i : i + chunk]:
                        list(dga.detect(q, ctx))
                        list(tun.detect(q, ctx))
                tot[s] += time.thread_time() - start
        gc.unfreeze()
        out.append({s: v / len(stream) * 1e6 for s, v in tot.items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", required=True, help="the earlier commit")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    from bench.dns_models import POPULAR, _random_label, names

    from tutela.dns.training import synth

    gc.set_threshold(50_000, 50, 100)  # as the sensor sets it
    with tempfile.TemporaryDirectory() as tmp:
        export(args.rev, Path(tmp))
        sys.path.insert(0, tmp)
        sides = {"before": side("tutela_before"), "after": side("tutela")}
        results: dict[tuple[str, str], list[float]] = {}
        for rep in range(args.reps):
            mixed = names(4000, 100 + rep)
            rng = random.Random(rep)
            zipf = rng.choices(mixed, weights=[1.0 / (i + 1) for i in range(len(mixed))], k=len(mixed) * 2)
            randoms = [n for n in mixed if _random_label(n)]
            b32 = "abcdefghijklmnopqrstuvwxyz234567"  # tunnel-like queries: base32 data labels, every one flagged
            tunnels = ["".join(rng.choices(b32, k=rng.randrange(30, 60))) + f".{i % 7}.tun.example.net"
                       for i in range(1500)]  # fmt: skip
            streams = [
                ("miss, mixed stream", mixed, 1, "detect"),
                ("miss, ordinary hostnames", list(dict.fromkeys(synth.generate(f"o{rep}", POPULAR, 3000, rep))), 1,
                 "detect"),
                ("miss, random-label names", randoms, 1, "detect"),
                ("miss, random-label + event appended", randoms, 1, "event"),
                ("miss, random-label + to_dict (total)", randoms, 1, "read"),
                ("miss, tunnel queries", tunnels, 1, "detect"),
                ("miss, tunnel queries + event appended", tunnels, 1, "event"),
                ("Zipf stream", zipf, 2, "detect"),
            ]  # fmt: skip
            for label, stream, passes, mode in streams:
                for p, got in enumerate(run_pair(sides, stream, passes, mode=mode)):
                    key = label if passes == 1 else f"{label}: {'amortised' if p == 0 else 'hit (second pass)'}"
                    for s, v in got.items():
                        results.setdefault((key, s), []).append(v)
    b_side, a_side = sides["before"], sides["after"]
    print(f"before = {args.rev} ({b_side['splitter']}, {b_side['path']} features, CNN {b_side['cnn']}), "
          f"after = working tree ({a_side['splitter']}, {a_side['path']} features, CNN {a_side['cnn']});"
          f" µs CPU per query, median (min-max) of {args.reps} runs, one process, interleaved")  # fmt: skip
    for key in dict.fromkeys(k for k, _ in results):
        b, a = results[(key, "before")], results[(key, "after")]
        mb, ma = statistics.median(b), statistics.median(a)
        print(f"{key:36s} before {mb:7.1f} ({min(b):.1f}-{max(b):.1f})   after {ma:7.1f} ({min(a):.1f}-{max(a):.1f})"
              f"   after/before {ma / mb:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
