"""The character-level DGA model's input, shared by training (torch, off-line) and serving (numpy).

A registrable domain `label.suffix` becomes `^label.suffix$`, each character an index into ALPHABET
(0 = padding, 1 = any other character), truncated to MAX_CHARS. Kept free of heavy imports.
"""

from __future__ import annotations

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-._^$"
PAD, OOV = 0, 1
INDEX = {c: i + 2 for i, c in enumerate(ALPHABET)}
VOCAB = len(ALPHABET) + 2
MAX_CHARS = 80  # a label is at most 63 characters; the suffix and the two markers fit beside it


def text_of(label: str, suffix: str) -> str:
    return f"^{label}.{suffix}"[: MAX_CHARS - 1] + "$"


def encode(label: str, suffix: str) -> list[int]:
    get = INDEX.get
    return [get(c, OOV) for c in text_of(label.lower(), suffix.lower())]
