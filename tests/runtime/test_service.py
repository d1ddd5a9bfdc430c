"""`tutela up --only gateway` starts the gateway with the upstream from tutela's config."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from tests.runtime.conftest import free_port
from tests.runtime.fake_upstream import FakeUpstream
from tutela.cli import main


@pytest.mark.slow
def test_tutela_up_starts_the_gateway(tutela_home: Path, tmp_path: Path) -> None:
    port = free_port()
    with FakeUpstream() as up:
        cfg = tmp_path / "config.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "services": {"gateway": {"listen": f"127.0.0.1:{port}"}},
                    "gateway": {"upstream": up.base, "profiles": {"default": {"prompt": {"detectors": []}}}},
                }
            )
        )
        try:
            assert main(["--config", str(cfg), "up", "--detach", "--only", "gateway"]) == 0
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "say: via tutela up"}]},
                timeout=30,
            )
            assert r.json()["choices"][0]["message"]["content"] == "via tutela up"
            assert httpx.get(f"http://127.0.0.1:{port}/health").json()["upstream"] is True
        finally:
            assert main(["--config", str(cfg), "down"]) == 0
