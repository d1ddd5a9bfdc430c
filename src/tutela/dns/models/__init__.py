"""The DNS models shipped in this package, pinned by sha256 (see pins.py, written by `tutela train dns`).

All are JSON (never pickle): `lexicon.json` (benign character model, English words, suffix priors),
`dga.json` (v1 DGA forest, kept for comparison), `dga_family.json` and `tunnel.json` (compact
gradient-boosted forests, see dns/forest.py, with their thresholds and training metadata under "meta").
`dga_cnn.safetensors` + `dga_cnn.json`: the DGA model served since v2, a character CNN run in numpy
(dns/charcnn.py), with its thresholds and training record; since v4 `dga_cnn2.safetensors` is its second
stage, run only on names the first scores at its gate (see dga_cnn.json -> stage2).
"""

from __future__ import annotations

from tutela.core.models import ModelFormat, ModelRef
from tutela.dns.models.pins import SHA256

PACKAGE = "tutela.dns.models"
VERSION = "1"


def _ref(name: str, version: str = VERSION, fmt: ModelFormat = ModelFormat.JSON, filename: str = "") -> ModelRef:
    return ModelRef(
        name=f"dns.{name}",
        version=version,
        sha256=SHA256[name],
        format=fmt,
        package=PACKAGE,
        filename=filename or f"{name}.json",
    )


LEXICON = _ref("lexicon")
DGA = _ref("dga")
DGA_FAMILY = _ref("dga_family")
TUNNEL = _ref("tunnel")
DGA_CNN = _ref("dga_cnn", "4", ModelFormat.SAFETENSORS, "dga_cnn.safetensors")
DGA_CNN2 = _ref("dga_cnn2", "4", ModelFormat.SAFETENSORS, "dga_cnn2.safetensors")
DGA_CNN_META = _ref("dga_cnn_meta", "4", filename="dga_cnn.json")
ALL = (LEXICON, DGA, DGA_FAMILY, TUNNEL, DGA_CNN, DGA_CNN2, DGA_CNN_META)
