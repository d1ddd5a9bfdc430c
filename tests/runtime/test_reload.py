"""Hot reload never acts on a half-written config file, and keeps the last good config on error."""

from __future__ import annotations

import os
from pathlib import Path

from tests.runtime import detectors
from tutela.core.models import ModelCache
from tutela.runtime.gateway.profiles import GatewayConfig, ProfileStore

HEAD = """default_profile: default
profiles:
  default:
    prompt: {detectors: [{id: test.marker}], action: block}
"""
# Cut after HEAD the text is still valid YAML and a valid config, only a different one: the
# `relaxed` profile missing and the app mapped to nothing. Acting on it would be wrong.
TAIL = """  relaxed:
    prompt: {detectors: [{id: test.marker}], action: monitor}
apps: {support: relaxed}
"""


def store(path: Path) -> ProfileStore:
    return ProfileStore(GatewayConfig(), detectors.registry(), ModelCache(), path)


def bump(path: Path, ns: int) -> None:
    """Give the file a distinct mtime (tests run faster than some filesystems' clocks tick)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + ns))


def test_a_file_being_written_is_read_only_once_it_stops_changing(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(HEAD + TAIL)
    profiles = store(path)
    assert profiles.version == 1 and set(profiles.current.profiles) == {"default", "relaxed"}

    with path.open("w") as fh:  # a writer in the middle of rewriting the file
        fh.write(HEAD)
        fh.flush()
        bump(path, 1_000)
        assert profiles.maybe_reload() is False  # changed since the last poll: wait
        assert profiles.version == 1 and "relaxed" in profiles.current.profiles
        fh.write(TAIL.replace("monitor", "block"))
        fh.flush()
        bump(path, 2_000)
        assert profiles.maybe_reload() is False  # still changing
        assert profiles.version == 1 and "relaxed" in profiles.current.profiles
    assert profiles.maybe_reload() is True  # stable for a poll: read, validated, swapped
    assert profiles.version == 2 and profiles.last_error is None
    assert profiles.current.profiles["relaxed"].channels["prompt"].action.value == "block"  # type: ignore[union-attr]
    assert profiles.maybe_reload() is False and profiles.version == 2  # nothing new


def test_a_bad_file_keeps_the_last_good_config_and_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(HEAD + TAIL)
    profiles = store(path)
    good = profiles.current
    path.write_text(HEAD + TAIL + "apps: {support: nowhere}\n")  # duplicate key, unknown profile
    bump(path, 1_000)
    assert profiles.maybe_reload() is False and profiles.maybe_reload() is False
    assert profiles.current is good and profiles.version == 1
    assert profiles.last_error and "nowhere" in profiles.last_error and profiles.reload_errors == 1
    assert profiles.maybe_reload() is False and profiles.reload_errors == 1  # the same bad file: not retried
    path.write_bytes(b"default_profile: \xff\xfe\n")  # not UTF-8
    bump(path, 2_000)
    profiles.maybe_reload()
    profiles.maybe_reload()
    assert profiles.current is good and "UTF-8" in (profiles.last_error or "") and profiles.reload_errors == 2
    path.write_text(HEAD)  # a good file again clears the error
    bump(path, 3_000)
    profiles.maybe_reload()
    assert profiles.maybe_reload() is True and profiles.last_error is None
    assert set(profiles.current.profiles) == {"default"}


def test_a_touched_but_unchanged_file_is_not_recompiled(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(HEAD)
    profiles = store(path)
    bump(path, 1_000)
    profiles.maybe_reload()
    assert profiles.maybe_reload() is False and profiles.version == 1
