from __future__ import annotations

from pathlib import Path

import pytest

from tutela.core.models import ModelCache
from tutela.dns.names import NameSplitter
from tutela.dns.scoring import DnsScorer

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dns"


@pytest.fixture(scope="session")
def models() -> ModelCache:
    return ModelCache()


@pytest.fixture(scope="session")
def splitter() -> NameSplitter:
    return NameSplitter()


@pytest.fixture(scope="session")
def scorer(models: ModelCache, splitter: NameSplitter) -> DnsScorer:
    return DnsScorer(models, splitter)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    for candidate in (DATA,):
        if (candidate / "dga").is_dir():
            return candidate.resolve()
    pytest.skip("the shared DNS data (../shared/data/dns) is not on this machine")
