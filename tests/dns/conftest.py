"""Fixtures: a real Unbound upstream (session) and in-process sensors in their own thread."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dns.unbound import unbound
from tutela.core.config import TutelaSettings, load_settings
from tutela.core.registry import DetectorRegistry
from tutela.core.store import EventStore, EventWriter
from tutela.dns.engine import DnsEngine
from tutela.dns.server import DnsSensor, new_event_loop

if shutil.which("unbound") is None and not Path("/usr/sbin/unbound").exists():  # pragma: no cover
    pytest.skip("unbound is not installed (bash scripts/system-deps.sh)", allow_module_level=True)

ALL_DETECTORS = [
    {"id": "dns.blocklist", "params": {"deny": ["tracker.example.net", "blocked.example.org"]}},
    {"id": "dns.rebinding"},
    {"id": "dns.lookalike", "params": {"brands": ["paypal.com"]}},
    {"id": "dns.newly_observed"},
    {"id": "dns.nxdomain_burst"},
    {"id": "dns.dga_session"},
    {"id": "dns.random_subdomain"},
]


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with unbound(tmp_path_factory.mktemp("unbound")) as port:
        yield port


@pytest.fixture(scope="session")
def small_udp_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Unbound that truncates every UDP answer above 512 bytes, whatever the client's EDNS size."""
    with unbound(tmp_path_factory.mktemp("unbound-small"), extra=["max-udp-size: 512"]) as port:
        yield port


def make_settings(home: Path, config: dict[str, Any]) -> TutelaSettings:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return load_settings(path, detectors=DetectorRegistry.load())


class SensorThread:
    def __init__(self, sensor: DnsSensor, writer: EventWriter | None) -> None:
        self.sensor = sensor
        self.writer = writer
        self.loop = new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.sensor.start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.sensor.close())
        self.loop.close()

    def start(self) -> SensorThread:
        self.thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    @property
    def port(self) -> int:
        assert self.sensor.bound is not None
        return int(self.sensor.bound[1])

    @property
    def engine(self) -> DnsEngine:
        return self.sensor.engine

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def events(self) -> list[dict[str, Any]]:
        if self.writer is not None:
            self.writer.flush()
            self.writer._ingest(blocking=True)
        settings = self.engine.settings
        cols, rows = EventStore(settings.store_path, home=settings.home).query("SELECT * FROM events ORDER BY ts")
        return [dict(zip(cols, r, strict=True)) for r in rows]


StartSensor = Callable[..., SensorThread]


@pytest.fixture
def start_sensor(tutela_home: Path) -> Iterator[StartSensor]:
    running: list[SensorThread] = []

    def start(
        upstreams: list[str],
        *,
        detectors: list[dict[str, Any]] | None = None,
        dns: dict[str, Any] | None = None,
        policy: dict[str, Any] | None = None,
        registry: DetectorRegistry | None = None,
        metrics: str | None = None,
    ) -> SensorThread:
        config: dict[str, Any] = {"detectors": {"dns": ALL_DETECTORS if detectors is None else detectors}}
        config["dns"] = {"timeout_s": 0.5, **(dns or {})}
        if policy:
            config["policy"] = {"dns": policy}
        registry = registry or DetectorRegistry.load()
        home = tutela_home
        home.mkdir(parents=True, exist_ok=True)
        path = home / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        settings = load_settings(path, detectors=registry)
        writer = EventWriter(settings.home, settings.store_path, flush_interval=0.1, ingest_interval=None)
        writer.start()
        engine = DnsEngine.from_settings(settings, registry, writer=writer)
        sensor = DnsSensor(engine, "127.0.0.1:0", upstreams, metrics_listen=metrics)
        s = SensorThread(sensor, writer).start()
        running.append(s)
        return s

    yield start
    for s in running:
        with contextlib.suppress(Exception):
            s.stop()
