from __future__ import annotations

import pytest

from tutela.posture.artifact import Artifact
from tutela.posture.scanner import ModelScanner


@pytest.fixture(scope="session")
def scanner() -> ModelScanner:
    return ModelScanner()


@pytest.fixture
def scan(scanner: ModelScanner):
    def run(data: bytes, name: str = "model.pkl"):
        return scanner.scan_artifact(Artifact(data, name))

    return run
