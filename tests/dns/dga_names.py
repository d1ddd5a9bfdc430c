"""Names for dns.dga_session's tests and benchmark: random-looking ones as a character DGA makes them, seeded."""

from __future__ import annotations

import random

CONSONANTS, VOWELS = "bcdfghjklmnpqrstvwxz", "aeiou"


def random_names(n: int, seed: int) -> list[str]:
    """n names of 12-16 consonant-heavy random letters under .com or .net."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        size = rng.randint(12, 16)
        label = "".join(rng.choice(CONSONANTS) if rng.random() < 0.8 else rng.choice(VOWELS) for _ in range(size))
        out.append(f"{label}.{rng.choice(['com', 'net'])}")
    return out
