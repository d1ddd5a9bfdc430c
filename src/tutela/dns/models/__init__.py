"""The DNS models shipped in this package, pinned by sha256 (see pins.py, written by `tutela train dns`).

All are JSON (never pickle): `lexicon.json` (benign character model, English words, suffix priors),
`dga.json`, `dga_family.json` and `tunnel.json` (compact gradient-boosted forests, see dns/forest.py,
with their thresholds and training metadata under "meta").
"""

from __future__ import annotations

from tutela.core.models import ModelFormat, ModelRef
from tutela.dns.models.pins import SHA256

PACKAGE = "tutela.dns.models"
VERSION = "1"


def _ref(name: str) -> ModelRef:
    return ModelRef(
        name=f"dns.{name}",
        version=VERSION,
        sha256=SHA256[name],
        format=ModelFormat.JSON,
        package=PACKAGE,
        filename=f"{name}.json",
    )


LEXICON = _ref("lexicon")
DGA = _ref("dga")
DGA_FAMILY = _ref("dga_family")
TUNNEL = _ref("tunnel")
ALL = (LEXICON, DGA, DGA_FAMILY, TUNNEL)
