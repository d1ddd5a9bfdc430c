"""Optional C extensions (CPython C API), built by setup.py; every function here has a pure-Python twin.

- `charcnn`: the character CNN's forward pass for one name (twin: `tutela.dns.charcnn`, numpy).
- `dnsfeatures`: `Tables.tunnel_features` / `Tables.dga_features` are `tutela.dns.lexical.Lexicon`'s
  `tunnel_features_python` / `dga_features_python` for ASCII text, and `Trees.raw_one` is
  `tutela.dns.forest.Forest.raw_one_python` (the compiled evaluator); bit-identical results.
- `linearscore`: `Scorer.score` is `tutela.runtime.features.LinearScorer.score_python` (the injection detector's
  fast tier: words, word pairs and character n-grams of words against the 80,000-entry weight table); bit-identical
  on CPython 3.11.
- `tunnelwindow`: `observe_reportable` is `tutela.dns.window.TunnelWindow.observe_reportable_python` (the
  tunnel window's per-query update, on the same Python state objects); the same state and evidence, bit-identical.
- `udpfast`: the DNS sensor's hot UDP loop, `HotSocket.serve` (recvmmsg, answer-cache hits answered,
  sendmmsg; twin: `tutela.dns.udpbatch.BatchSocket._serve_python` with `tutela.dns.hotpath`) and
  `HotSocket.send` (twin: `BatchSocket._send_one_python`); same replies and counts.

The Python code stays the reference: tests compare both on many inputs. `load(name)` gives the module, or None
where it did not build or `TUTELA_PURE_PYTHON=1` forces the Python path.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load(name: str) -> ModuleType | None:
    """tutela._native.<name>, or None (not built, or TUTELA_PURE_PYTHON=1)."""
    if os.environ.get("TUTELA_PURE_PYTHON") == "1":
        return None
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None
