"""Gateway fixtures: the fake upstream (the only fake) and a real gateway under uvicorn on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml

from tests.runtime import detectors
from tests.runtime.fake_upstream import FakeUpstream
from tutela.core.config import TutelaSettings
from tutela.runtime.gateway.profiles import GatewaySettings
from tutela.runtime.gateway.server import build, http_protocol

PROFILES: dict[str, Any] = {
    "default_profile": "default",
    "profiles": {
        "default": {
            "prompt": {"detectors": [{"id": "test.marker"}, {"id": "test.secret"}, {"id": "test.boom"}]},
            "document": {"detectors": [{"id": "test.marker"}]},
            "tool_output": {"detectors": [{"id": "test.marker"}]},
            "output": {"detectors": [{"id": "test.marker"}, {"id": "test.secret"}]},
            "stream": {"holdback_chars": 32, "lookback_chars": 64},
        },
        "redact": {
            "prompt": {"detectors": [{"id": "test.secret"}], "action": "redact"},
            "output": {"detectors": [{"id": "test.secret"}], "action": "redact"},
            "stream": {"holdback_chars": 32, "lookback_chars": 64},
        },
        "monitor": {
            "prompt": {"detectors": [{"id": "test.marker"}], "action": "monitor"},
            "output": {"detectors": [{"id": "test.marker"}], "action": "monitor"},
        },
        "closed": {
            "on_error": "closed",
            "detector_timeout_ms": 200,
            "prompt": {"detectors": [{"id": "test.boom"}, {"id": "test.slow"}]},
            "output": {"enabled": False},
        },
        "tools": {
            "tools": {"allow": ["get_weather", "search_*"]},
            "prompt": {"detectors": []},
            "tool_output": {"detectors": [{"id": "test.marker"}]},
            "output": {"detectors": [{"id": "test.secret"}]},
        },
        "limited": {
            "budgets": {"requests": 3, "window_s": 60, "max_prompt_chars": 1000},
            "prompt": {"detectors": [{"id": "test.marker"}]},
        },
        "raw": {"store_raw": True, "prompt": {"detectors": [{"id": "test.marker"}]}},
    },
    "apps": {
        "redactor": "redact",
        "watcher": "monitor",
        "strict": "closed",
        "agent": "tools",
        "small": "limited",
        "rawlog": "raw",
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningGateway:
    def __init__(self, url: str, gateway: Any, config_file: Path, home: Path) -> None:
        self.url = url
        self.base = url + "/v1"
        self.gateway = gateway
        self.config_file = config_file
        self.home = home


@contextlib.contextmanager
def run_gateway(
    home: Path, upstream: str | None, config: dict[str, Any], registry: Any = None, **settings: Any
) -> Iterator[RunningGateway]:
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "gateway.yaml"
    config_file.write_text(yaml.safe_dump(config))
    gw = GatewaySettings(upstream=upstream, config_file=config_file, reload_interval_s=0.1, **settings)
    port = free_port()
    listen = f"127.0.0.1:{port}"
    gateway, app = build(TutelaSettings(home=home), gw, listen, registry or detectors.registry())
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            loop="asyncio",
            http=http_protocol(),  # as `gateway serve` runs it: one write per answer with a length
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # model loads at start (ONNX session, spaCy) on a shared machine
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("gateway did not start")
        time.sleep(0.01)
    try:
        yield RunningGateway(f"http://{listen}", gateway, config_file, home)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(chunk=4) as up:
        yield up


@pytest.fixture(scope="module")
def gw(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("gw-home")
    with run_gateway(home, upstream.base, PROFILES) as running:
        yield running


@pytest.fixture(scope="session")
def llm_data() -> Path:
    """The shared LLM data sets (../shared/data/llm), for tests of the trained detectors."""
    from tutela.runtime import datasets as ds

    try:
        return ds.data_dir()
    except Exception:
        pytest.skip("shared data not available (set TUTELA_DATA)")
