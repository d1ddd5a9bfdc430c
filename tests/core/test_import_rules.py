"""Architecture rules: import-linter contracts, and imports stay light (no ML stack on import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "onnxruntime", "transformers", "sklearn", "lightgbm", "xgboost", "tensorflow", "spacy")
ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" not in proc.stdout.split("Contracts:")[-1].replace("0 broken", "")


def test_import_tutela_is_light() -> None:
    code = f"import sys, tutela; bad = [m for m in {HEAVY!r} if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_tutela_module_imports_without_the_ml_stack() -> None:
    code = f"""
import importlib, pkgutil, sys, tutela
names = [m.name for m in pkgutil.walk_packages(tutela.__path__, "tutela.") if m.name != "tutela.__main__"]
for name in names:
    importlib.import_module(name)
bad = [m for m in {HEAVY!r} if m in sys.modules]
print(len(names), bad)
sys.exit(bool(bad))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
