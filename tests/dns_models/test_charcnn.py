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
