"""Runs one peer scanner in-process over files; executed with the peers' python (bench/envs/models.txt).

The scanner's modules are imported before the clock starts, so times are scans, not imports.

usage: _peer_runner.py SCANNER REPEAT FILE... -> JSON {file: {"detected", "error", "seconds": [..]}}
"""

from __future__ import annotations

import json
import sys
import time


def picklescan(path: str) -> bool:
    from picklescan.scanner import scan_file_path

    r = scan_file_path(path)
    return bool(r.infected_files or r.issues_count)


def modelscan(path: str) -> bool:
    from modelscan.modelscan import ModelScan

    r = ModelScan().scan(path)
    return bool(r.get("issues"))


def fickling(path: str) -> bool:
    import zipfile

    import fickling as fk
    from fickling.analysis import Severity

    if zipfile.is_zipfile(path):  # PyTorch and other zips: fickling's archive API scans their pickles
        results = fk.scan_zip_archive(path, graceful=True)
        return any(r.severity != Severity.LIKELY_SAFE for r in results.values())
    return not fk.is_likely_safe(path)


def main() -> None:
    name, repeat, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    fn = {"picklescan": picklescan, "modelscan": modelscan, "fickling": fickling}[name]
    __import__({"picklescan": "picklescan.scanner", "modelscan": "modelscan.modelscan", "fickling": "fickling"}[name])
    out = {}
    for path in files:
        times, detected, error = [], False, None
        for _ in range(repeat):
            t0 = time.perf_counter()
            try:
                detected = fn(path)
            except Exception as exc:  # a peer that crashes did not detect
                detected, error = False, f"{type(exc).__name__}: {str(exc)[:120]}"
            times.append(time.perf_counter() - t0)
        out[path] = {"detected": detected, "error": error, "seconds": times}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
