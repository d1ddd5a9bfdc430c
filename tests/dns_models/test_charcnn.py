"""The character CNN served in numpy: one name and batches agree, padding never matters, the weights
file is pinned and validated, and the numpy port was checked against torch when it was installed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tutela.core.errors import ModelUnavailable
from tutela.core.models import ModelCache
from tutela.dns import models as refs
from tutela.dns.charcnn import CharCnn, CharCnnError
from tutela.dns.training.charset import MAX_CHARS, encode


@pytest.fixture(scope="module")
def cnn():
    return CharCnn(ModelCache().get(refs.DGA_CNN))


def _reference(cnn: CharCnn, tensors, label: str, suffix: str) -> float:
    """Textbook convolution (loops over positions and offsets), independent of the table trick."""
    ids = encode(label, suffix)
    e = tensors["emb.weight"][ids]  # (n, E)
    pooled = []
    for j, k in enumerate(cnn.widths):
        w, b = tensors[f"convs.{j}.weight"], tensors[f"convs.{j}.bias"]
        rows = [sum(w[:, :, t] @ e[i + t] for t in range(k)) + b for i in range(len(ids) - k + 1)]
        pooled.append(np.maximum(np.max(rows, axis=0), 0))
    z = np.concatenate(pooled)
    h = np.maximum(tensors["hidden.weight"] @ z + tensors["hidden.bias"], 0)
    return float((tensors["out.weight"] @ h + tensors["out.bias"]).ravel()[0])


def test_matches_a_textbook_convolution(cnn):
    tensors = ModelCache().get(refs.DGA_CNN)
    for label, suffix in (("google", "com"), ("oiyvxttcdjbfjotxsecg", "com"), ("a", "co.uk"), ("x" * 63, "net")):
        assert cnn.logit_one(label, suffix) == pytest.approx(_reference(cnn, tensors, label, suffix), abs=1e-4)


def test_batch_equals_single_whatever_the_padding(cnn):
    names = [("google", "com"), ("kdjfhgqwoeiruty", "net"), ("a", "io"), ("x1" * 40, "com"), ("bbc", "co.uk")]
    batch = cnn.logit_batch(names)
    for (label, suffix), b in zip(names, batch, strict=True):
        assert abs(cnn.logit_one(label, suffix) - b) < 1e-4
        alone = cnn.logit_batch([(label, suffix)])[0]  # no padding at all
        assert abs(alone - b) < 1e-4


def test_input_is_bounded():
    ids = encode("é" * 500, "com")
    assert len(ids) == MAX_CHARS and ids[0] != 1 and 1 in ids  # marker kept, non-ASCII -> OOV


def test_numpy_port_was_checked_against_torch(models):
    check = models.get(refs.DGA_CNN_META)["numpy_check"]
    assert check["numpy_vs_torch_max_abs_logit"] < 1e-3


def test_malformed_weights_are_refused():
    tensors = dict(ModelCache().get(refs.DGA_CNN))
    del tensors["hidden.bias"]
    with pytest.raises(CharCnnError):
        CharCnn(tensors)
    tensors = dict(ModelCache().get(refs.DGA_CNN))
    tensors["convs.1.weight"] = tensors["convs.1.weight"][:, :, :2]
    with pytest.raises(CharCnnError):
        CharCnn(tensors)


def test_tampered_weights_pin_is_refused():
    with pytest.raises(ModelUnavailable, match="sha256"):
        ModelCache().get(dataclasses.replace(refs.DGA_CNN, sha256="0" * 64))


def test_gated_pair_runs_the_second_stage_only_at_the_gate():
    """v4: the second CNN runs only where the first's logit reaches the gate; there the logit is the mean."""
    from tutela.dns.charcnn import GatedCnn
    from tutela.dns.scoring import DnsScorer

    cache = ModelCache()
    meta = cache.get(refs.DGA_CNN_META)
    assert 0.0 < meta["stage2"]["stage2_share_val_benign"] < 0.02  # v4: a second stage on about 1% of names
    first, second = CharCnn(cache.get(refs.DGA_CNN)), CharCnn(cache.get(refs.DGA_CNN2))
    gated = DnsScorer(cache)._dga_model()[0]
    assert isinstance(gated, GatedCnn) and gated.gate == meta["stage2"]["gate_logit"]
    names = [("google", "com"), ("wikipedia", "org"), ("oiyvxttcdjbfjotxsecg", "com"),
             ("xzz3ug32bale1uo60y7xj6rge", "net"), ("amazon", "co.uk"), ("qsgjqtqtpc", "net"),
             ("earnestnessbiophysicalohax", "com")]  # fmt: skip
    z1 = [first.logit_one(*n) for n in names]
    assert any(z < gated.gate for z in z1) and any(z >= gated.gate for z in z1)  # both paths are exercised
    calls: list[tuple[str, str]] = []

    class Counting:
        def logit_one(self, label: str, suffix: str) -> float:
            calls.append((label, suffix))
            return second.logit_one(label, suffix)

        def logit_batch(self, batch):
            calls.extend(batch)
            return second.logit_batch(batch)

    probe = GatedCnn(first, Counting(), gated.gate)  # type: ignore[arg-type]
    for n, z in zip(names, z1, strict=True):
        want = z if z < gated.gate else (z + second.logit_one(*n)) / 2
        assert probe.logit_one(*n) == pytest.approx(want, abs=1e-9)
    assert calls == [n for n, z in zip(names, z1, strict=True) if z >= gated.gate]
    calls.clear()
    batch = probe.logit_batch(names)
    assert np.allclose(batch, [gated.logit_one(*n) for n in names], atol=1e-4)
    assert calls == [n for n, z in zip(names, z1, strict=True) if z >= gated.gate]
