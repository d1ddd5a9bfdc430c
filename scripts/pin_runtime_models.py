"""Write the sha256 of the trained runtime models into their ModelRefs (after scripts/train_runtime_injection.py).

.venv/bin/python scripts/pin_runtime_models.py
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "src" / "tutela" / "runtime" / "models"
SOURCE = ROOT / "src" / "tutela" / "runtime" / "injection.py"


def main() -> int:
    code = SOURCE.read_text()
    for name, fmt in (
        ("injection_fast.json", "JSON"),
        ("injection_semantic.json", "JSON"),
        ("injection_document.json", "JSON"),
        ("injection_encoder_delta.safetensors", "SAFETENSORS"),
        ("injection_meta.json", "JSON"),
    ):
        digest = hashlib.sha256((MODELS / name).read_bytes()).hexdigest()
        pattern = rf'"[0-9a-f]{{64}}"(,\n    ModelFormat\.{fmt},\n    _PKG,\n    "{re.escape(name)}")'
        code, n = re.subn(pattern, lambda m, d=digest: f'"{d}"' + m.group(1), code)
        if n != 1:
            raise SystemExit(f"no ModelRef for {name} in {SOURCE}")
        print(name, digest)
    SOURCE.write_text(code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
