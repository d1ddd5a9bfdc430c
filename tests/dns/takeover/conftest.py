from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dns.takeover.nsd import Nsd
from tests.dns.takeover.world import world_zones


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nsd]:
    """NSD serving the scanned zone and the zones of its targets, with AXFR allowed to loopback."""
    with Nsd(tmp_path_factory.mktemp("nsd-world"), world_zones(), xfr=True) as server:
        yield server
