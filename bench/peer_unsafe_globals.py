"""Dump the unsafe-globals lists of picklescan, modelscan and fickling (run with the peers' python).

    bench/.venv-models/bin/python bench/peer_unsafe_globals.py > tests/posture/peer_unsafe_globals.json

tests/posture/test_peer_globals.py checks that every global a peer treats as dangerous is at least
HIGH for tutela (or is a documented, deliberate exception). "*" means the whole module.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import sys


def _norm(entries: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for module, names in entries.items():
        out[module] = ["*"] if names == "*" else sorted({names} if isinstance(names, str) else set(names))
    return out


def main() -> None:
    from fickling import analysis, fickle
    from modelscan.settings import DEFAULT_SETTINGS
    from picklescan import scanner

    modelscan: dict[str, list[str]] = {}
    for entries in DEFAULT_SETTINGS["unsafe_globals"].values():  # CRITICAL, HIGH, MEDIUM, LOW
        for module, names in _norm(entries).items():
            modelscan.setdefault(module, [])
            modelscan[module] = sorted(set(modelscan[module]) | set(names))
    fick: dict[str, list[str]] = {m: ["*"] for m in fickle.UNSAFE_IMPORTS}
    for m in analysis.UnsafeImportsML.UNSAFE_MODULES:
        fick[m] = ["*"]
    for m, names in analysis.UnsafeImportsML.UNSAFE_IMPORTS.items():
        fick[m] = sorted(set(fick.get(m, [])) | set(names)) if fick.get(m) != ["*"] else ["*"]
    doc = {
        "versions": {n: md.version(n) for n in ("picklescan", "modelscan", "fickling")},
        "picklescan": _norm(scanner._unsafe_globals),
        "modelscan": modelscan,
        "fickling": fick,
        "fickling_safe_builtins": sorted(fickle.SAFE_BUILTINS),
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
