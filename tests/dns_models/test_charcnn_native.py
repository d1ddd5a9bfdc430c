"""The character CNN's forward pass in C (tutela/_native/charcnn.c) against its numpy twin: the same logits,
bit for bit, on real names, generated names and hostile input; the C object refuses malformed weights and
ids; and the build is checked (a missing extension fails here unless TUTELA_PURE_PYTHON=1 or
TUTELA_ALLOW_NO_NATIVE=1).

Bit-identical holds on x86-64 CPUs with AVX2 and FMA, where numpy's OpenBLAS runs the kernels whose order
the C code follows (the golden tests, test_equivalence.py, already need numpy's exact sums there)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.native_build import PURE, missing
from tutela._native import load
from tutela.core.models import ModelCache
from tutela.dns import models as refs
from tutela.dns.charcnn import CharCnn, GatedCnn
from tutela.dns.scoring import Calibration, DnsScorer, _sigmoid, dga_judged
from tutela.dns.splitcache import RegistrableSplitter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pair() -> tuple[CharCnn, CharCnn]:
    cache = ModelCache()
    first, second = CharCnn(cache.get(refs.DGA_CNN)), CharCnn(cache.get(refs.DGA_CNN2))
    if first.native is None:
        missing("charcnn", "is off, not built, or this CPU lacks AVX2/FMA")
    return first, second


def test_the_extension_is_built_and_chosen() -> None:
    cnn = CharCnn(ModelCache().get(refs.DGA_CNN))
    if PURE:
        assert cnn.path == "numpy" and cnn.native is None
        return
    native = load("charcnn")
    if native is None or not native.KERNEL:
        missing("charcnn", "is not built, or this CPU lacks AVX2/FMA")
    assert cnn.path == "native" and native.KERNEL == "avx2+fma"
    gated = DnsScorer(ModelCache())._dga_model()[0]
    assert isinstance(gated, GatedCnn) and gated.first.path == gated.second.path == "native"


def test_pure_python_is_forced_by_the_environment() -> None:
    env = {**os.environ, "TUTELA_PURE_PYTHON": "1", "PYTHONPATH": str(ROOT / "src")}
    code = ("from tutela.core.models import ModelCache; from tutela.dns import models as refs; "
            "from tutela.dns.charcnn import CharCnn; print(CharCnn(ModelCache().get(refs.DGA_CNN)).path)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "numpy"


def _same(cnn: CharCnn, label: str, suffix: str) -> None:
    c, ref = cnn.logit_one(label, suffix), cnn.logit_one_numpy(label, suffix)
    assert c == ref, (label, suffix, c, ref)


HOSTILE = [
    ("", ""), ("", "com"), ("a", ""), ("x" * 253, "com"), ("a" * 1000, "b" * 1000), ("\x00" * 70, "\x00"),
    ("é" * 63, "рф"), ("İ" * 40, "com"), ("\ud800bad", "net"), ("".join(map(chr, range(256))), "\x00\xff" * 128),
    ("-.-.", "."), ("^$^$", "$^"), ("UPPER", "COM"), ("0" * 63, "99"), ("\U0001f600" * 30, "io"),
]  # fmt: skip


def test_hostile_names_give_the_numpy_logit(pair: tuple[CharCnn, CharCnn]) -> None:
    for cnn in pair:
        for label, suffix in HOSTILE:
            _same(cnn, label, suffix)
        for b in range(256):  # every byte value, alone and among letters
            _same(cnn, chr(b), "com")
            _same(cnn, f"ab{chr(b)}cd", chr(b))


@settings(max_examples=300, deadline=None)
@given(label=st.text(max_size=120), suffix=st.text(max_size=30))
def test_any_text_gives_the_numpy_logit(pair: tuple[CharCnn, CharCnn], label: str, suffix: str) -> None:
    for cnn in pair:
        _same(cnn, label, suffix)


@settings(max_examples=300, deadline=None)
@given(label=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=63),
       suffix=st.sampled_from(["com", "net", "co.uk", "xyz", "de", "info"]))  # fmt: skip
def test_domain_like_names_give_the_numpy_logit(pair: tuple[CharCnn, CharCnn], label: str, suffix: str) -> None:
    for cnn in pair:
        _same(cnn, label, suffix)


@settings(max_examples=200, deadline=None)
@given(ids=st.binary(min_size=1, max_size=400))
def test_any_ids_in_range_give_the_numpy_logit(pair: tuple[CharCnn, CharCnn], ids: bytes) -> None:
    """Raw ids, END tokens and lengths far past MAX_CHARS included: the C code pads with END past the end."""
    cnn = pair[0]
    ids = bytes(b % cnn.vocab for b in ids)
    assert cnn.native is not None
    assert cnn.native.logit(ids) == cnn.logit_ids_numpy(ids)


def test_ids_outside_the_vocabulary_are_refused(pair: tuple[CharCnn, CharCnn]) -> None:
    net = pair[0].native
    assert net is not None
    vocab = pair[0].vocab
    for bad in (b"", bytes([vocab]), b"abc" + bytes([255]), bytes(range(256))):
        with pytest.raises(ValueError):
            net.logit(bad)
    with pytest.raises(TypeError):
        net.logit("abc")
    assert net.logit(bytearray(b"\x02\x03\x04")) == net.logit(memoryview(b"\x02\x03\x04"))
    assert net.logit(bytes([vocab - 1]) * 5000) == pair[0].logit_ids_numpy(bytes([vocab - 1]) * 5000)


def test_malformed_arrays_are_refused(pair: tuple[CharCnn, CharCnn]) -> None:
    cnn = pair[0]
    Net = type(cnn.native)
    good = dict(table=cnn.table, bias=cnn.b, w_hidden=cnn.w_hidden, b_hidden=cnn.b_hidden, w_out=cnn.w_out,
                b_out=cnn.b_out, kmax=cnn.kmax)  # fmt: skip
    Net(**good)
    bad = [
        {"table": cnn.table.astype(np.float64)}, {"table": cnn.table[:, ::2]}, {"table": cnn.table[:-1]},
        {"table": cnn.table.reshape(-1)}, {"bias": cnn.b[:-1]}, {"w_hidden": cnn.w_hidden.T.copy()},
        {"w_hidden": np.asfortranarray(cnn.w_hidden)}, {"b_hidden": cnn.b_hidden[:3]}, {"w_out": cnn.w_out[1:]},
        {"kmax": 0}, {"kmax": 7}, {"kmax": -1}, {"table": b"\x00" * 64}, {"table": None},
    ]  # fmt: skip
    for change in bad:
        with pytest.raises((ValueError, TypeError, BufferError)):
            Net(**{**good, **change})


def test_batches_are_single_names(pair: tuple[CharCnn, CharCnn]) -> None:
    names = [("google", "com"), ("kdjfhgqwoeiruty", "net"), ("a", "io"), ("x1" * 40, "com"), ("", ""), ("é", "de")]
    for cnn in pair:
        batch = cnn.logit_batch(names)
        assert batch.tolist() == [cnn.logit_one(*n) for n in names]
        assert np.abs(batch - cnn.logit_batch_numpy(names)).max() < 1e-5  # numpy's batches sum in another order


def _real_names(data: Path) -> list[str]:
    tranco = (data / "benign" / "tranco_top_50k.csv").read_text().splitlines()
    out = [line.split(",", 1)[1] for line in tranco[::25]]
    for f in sorted((data / "dga").glob("*.txt")):
        lines = f.read_text(encoding="utf-8", errors="replace").split()
        out += lines[:: max(1, len(lines) // 50)][:50]
    # the names whose scores are the LOW, MEDIUM and HIGH thresholds (installed from these very scores)
    out += ["ipwho.is", "bwajeffwashere.buzz", "qrstuvwxyzab.com"]
    return list(dict.fromkeys(out))


def test_real_names_same_logits_and_levels(pair: tuple[CharCnn, CharCnn], data_dir: Path) -> None:
    """About 4,000 names of the shared data: identical logits of both networks, hence identical levels of the
    gated pair (scripts/charcnn_native_check.py runs every name of the files: 214,720)."""
    first, second = pair
    cal = Calibration(ModelCache().get(refs.DGA_CNN_META)["thresholds"])
    gate = DnsScorer(ModelCache())._dga_model()[0].gate  # type: ignore[union-attr]
    split = RegistrableSplitter()
    parts = [p for p in map(split, _real_names(data_dir)) if dga_judged(p)]
    assert len(parts) > 3500
    levels = {"C": [], "numpy": []}  # type: dict[str, list[str | None]]
    for p in parts:
        for side, method in (("C", "logit_one"), ("numpy", "logit_one_numpy")):
            z = getattr(first, method)(p.label, p.suffix)
            if z >= gate:
                z = (z + getattr(second, method)(p.label, p.suffix)) / 2.0
            levels[side].append(cal.level(cal.confidence(_sigmoid(z))))
        _same(first, p.label, p.suffix)
        _same(second, p.label, p.suffix)
    assert levels["C"] == levels["numpy"]
    assert sum(v is not None for v in levels["C"]) > 1000  # the DGA names are flagged: the levels were exercised
