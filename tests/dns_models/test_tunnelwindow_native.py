"""The C tunnel-window update (tutela._native.tunnelwindow) leaves the window exactly as the Python reference
(TunnelWindow.observe_reportable_python) does and returns the same evidence, bit for bit.

Two windows are fed the same observations, one through each path, and compared after every one: the result, every
key's events, digests, running totals (float bits) and level, and the keys' LRU order. Observations come from real
tunnel and popular names (the shared data), generated ones (hypothesis: any text, NaN and infinite scores, clock
gaps past the window) and hostile subdomains (empty, 253+ characters, NUL, non-ASCII, every byte value), with small
max_keys / max_events so eviction and popping run all the time. The extension must be built: a missing one fails
here unless TUTELA_PURE_PYTHON=1 (the Python path on purpose) or TUTELA_ALLOW_NO_NATIVE=1.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native_build import PURE, missing
from tutela.dns import window as window_mod
from tutela.dns.lexical import entropy
from tutela.dns.scoring import DnsScorer
from tutela.dns.window import TunnelWindow, WindowEvidence

Observation = tuple[str, str, str, int, float, float, float]  # client, registrable, sub, qtype, entropy, conf, now


def test_the_extension_is_built_unless_python_is_asked_for() -> None:
    if PURE:
        assert window_mod._NATIVE is None
        return
    if window_mod._NATIVE is None:
        missing("tunnelwindow")


def _native_observe(w: TunnelWindow, *obs: Any) -> WindowEvidence | None:
    if window_mod._NATIVE is None:
        pytest.skip("no C extension on this path")
    return w.observe_reportable(*obs)


def _bits(x: object) -> object:
    return x.hex() if isinstance(x, float) else x


def _evidence(ev: WindowEvidence | None) -> tuple[object, ...] | None:
    if ev is None:
        return None
    return tuple(_bits(getattr(ev, f)) for f in WindowEvidence.__dataclass_fields__)


def _state(w: TunnelWindow) -> list[tuple[object, ...]]:
    return [
        (key, [tuple(_bits(v) for v in e) for e in s.events], dict(s.digests), s.bytes, s.qtypes,
         _bits(s.entropy), _bits(s.confidence), s.level)
        for key, s in w._keys.items()
    ]  # fmt: skip


def same_windows(observations: list[Observation], **config: Any) -> int:
    """Feed both paths; assert equal after every observation. Returns how many results were evidence."""
    py, c = TunnelWindow(**config), TunnelWindow(**config)
    reported = 0
    for obs in observations:
        expected = py.observe_reportable_python(*obs)
        got = _native_observe(c, *obs)
        assert _evidence(got) == _evidence(expected), obs
        assert _state(c) == _state(py), obs
        reported += expected is not None
    return reported


def _stream(rng: random.Random, subs: list[tuple[str, str]], n: int) -> list[Observation]:
    now = 1000.0 + rng.random()
    out: list[Observation] = []
    for _ in range(n):
        registrable, sub = rng.choice(subs)
        now += rng.choice((0.0, 0.01, 0.5, 3.0, 70.0)) * rng.random()  # some gaps pass the 60 s window
        out.append((f"10.0.0.{rng.randrange(3)}", registrable, sub, rng.choice((1, 16, 28, 10, 5, 65399)),
                    entropy(sub.replace(".", "")), rng.random(), now))  # fmt: skip
    return out


def test_same_on_real_names(scorer: DnsScorer, data_dir: Path) -> None:
    names: list[str] = []
    with open(data_dir / "tunneling" / "validate.csv", newline="", encoding="utf-8") as f:
        names += [row[1] for row in csv.reader(f) if len(row) == 2][:3000]  # label,qname (no header)
    with open(data_dir / "benign" / "tranco_top_50k.csv", newline="", encoding="utf-8") as f:
        names += [row[1] for row in csv.reader(f)][:3000]
    parts = [scorer.split(n) for n in names]
    subs = [(p.registrable, p.sub) for p in parts if p.sub]
    assert len(subs) > 1000
    # a tunnel-like session per domain: few registrables, many subdomains, so every level is reached
    rng = random.Random(7)
    few = [(r, s) for r, s in subs if r in {subs[0][0], subs[1][0], subs[-1][0]}] or subs[:50]
    assert same_windows(_stream(rng, few + subs[:20], 3000), max_events=8, max_keys=5) > 0
    same_windows(_stream(rng, subs, 5000), max_events=4, max_keys=50)
    same_windows(_stream(rng, subs, 3000))  # the defaults


HOSTILE = ["", "a" * 300, "\x00", "a\x00b", "é" * 63, "😀.x", "." * 253, "-" * 254, "\udcff"]


@pytest.mark.parametrize("sub", [*HOSTILE, "".join(chr(b) for b in range(256)), "x" * 100_000])
def test_same_on_hostile_subdomains(sub: str) -> None:
    rng = random.Random(len(sub))
    obs = [("c", "evil.example", sub, 16, rng.random() * 5, rng.random(), 10.0 + i) for i in range(12)]
    assert same_windows(obs, max_events=4) > 0


def test_every_byte_value_as_a_subdomain() -> None:
    obs = [("c", "x.example", chr(b) * (b % 7), 16, 4.0, 0.9, float(b)) for b in range(256)]
    assert same_windows(obs, max_events=5, max_keys=2) > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 3),
            st.text(max_size=40),
            st.sampled_from([1, 5, 10, 16, 28, 255, 65399, 0, -1, 1 << 70]),
            st.floats(allow_nan=True, allow_infinity=True),
            st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True)),
            st.floats(0, 100),
        ),
        max_size=80,
    ),
    st.integers(4, 10),
    st.integers(1, 4),
)
def test_same_on_generated_observations(raw: list[tuple[Any, ...]], max_events: int, max_keys: int) -> None:
    now = 0.0
    obs: list[Observation] = []
    for client, reg, sub, qtype, ent, conf, dt in raw:
        now += dt
        obs.append((f"c{client}", f"r{reg}.example", sub, qtype, ent, conf, now))
    same_windows(obs, max_events=max_events, max_keys=max_keys)


def test_a_clock_that_gives_ints_takes_the_python_path() -> None:
    """A test clock may give ints: the C path declines (NotImplemented) and the twin runs, so the same result."""
    obs = [("c", "t.example", f"{i:x}data", 16, 4.0, 0.9, 100 + i) for i in range(8)]
    py, c = TunnelWindow(), TunnelWindow()
    for o in obs:
        assert _evidence(c.observe_reportable(*o)) == _evidence(py.observe_reportable_python(*o))  # type: ignore[arg-type]
    assert _state(c) == _state(py)


def test_bad_arguments_raise_not_crash() -> None:
    native = window_mod._NATIVE
    if native is None:
        pytest.skip("no C extension on this path")
    w = TunnelWindow()
    with pytest.raises(TypeError):
        native.observe_reportable(w._keys, w._params)
    with pytest.raises(TypeError):
        native.observe_reportable([], w._params, object, WindowEvidence, frozenset(), "c", "r", "s", 1, 1.0, 1.0, 1.0)
    # a corrupt state (an event that is not a 6-tuple) is an error, not a crash
    w.observe_reportable("c", "r", "s", 1, 1.0, 1.0, 1.0)
    w._keys[("c", "r")].events.appendleft("junk")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        native.observe_reportable(
            w._keys, w._params, window_mod._Key, WindowEvidence, window_mod.TUNNEL_QTYPES,
            "c", "r", "s", 1, 1.0, 1.0, 2.0,
        )  # fmt: skip
