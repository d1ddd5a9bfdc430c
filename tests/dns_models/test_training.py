"""`tutela train dns` is reproducible: retraining from the shared data gives the shipped files, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from tutela.dns.models import pins
from tutela.dns.models.pins import SHA256


@pytest.mark.slow
def test_training_reproduces_the_shipped_models(data_dir, tmp_path, monkeypatch):
    pytest.importorskip("lightgbm")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    from tutela.dns.training.train import train

    (tmp_path / "pins.py").write_text(Path(pins.__file__).read_text())  # the CNN's pins are kept, not retrained
    result = train(data_dir, tmp_path, progress=lambda _msg: None)
    assert result["sha256"] == {k: v for k, v in SHA256.items() if not k.startswith("dga_cnn")}
    assert (tmp_path / "pins.py").read_text() == Path(pins.__file__).read_text()
