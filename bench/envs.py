"""Peer environments for the benchmark suite: each peer group gets its own venv, never tutela's own.

`bench/envs/<env>.txt` is a pinned pip requirements file; `ensure(env)` creates `bench/.venv-<env>` from it
(once; again when the file changes) and returns that environment's python. Scripts call `peer_python(env)`.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / "bench" / "envs"


def venv_dir(env: str) -> Path:
    return ROOT / "bench" / f".venv-{env}"


def peer_python(env: str) -> Path:
    python = venv_dir(env) / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"peer environment {env!r} missing: run `python -m bench.envs {env}` (or make bench)")
    return python


def _requirements(env: str) -> Path:
    requirements = ENVS / f"{env}.txt"
    if not requirements.exists():
        raise SystemExit(f"no requirements file {requirements}")
    return requirements


def is_current(env: str) -> bool:
    """The environment exists and was built from the requirements file as it is now."""
    digest = hashlib.sha256(_requirements(env).read_bytes()).hexdigest()
    stamp = venv_dir(env) / ".requirements.sha256"
    return (venv_dir(env) / "bin" / "python").exists() and stamp.exists() and stamp.read_text() == digest


def ensure(env: str, base_python: str = "python3") -> Path:
    requirements = _requirements(env)
    python = venv_dir(env) / "bin" / "python"
    if is_current(env):
        return python
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv_dir(env) / ".requirements.sha256"
    subprocess.run([base_python, "-m", "venv", "--clear", str(venv_dir(env))], check=True)
    # --no-compile: byte-compiling every installed file (TensorFlow alone is thousands) costs minutes of CPU;
    # the few modules a benchmark imports are compiled on first use
    pip = [str(python), "-m", "pip", "install", "-q", "--no-compile"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    # a line "# then-pip: ARGS" runs `pip install -q ARGS` afterwards, for what a requirements file cannot say
    # (e.g. one package installed with --no-deps --ignore-requires-python, its dependencies pinned above)
    for line in requirements.read_text().splitlines():
        if line.startswith("# then-pip:"):
            subprocess.run([*pip, *line.split(":", 1)[1].split()], check=True)
    stamp.write_text(digest)
    return python


def ensure_all(names: list[str], parallel: int = 4) -> None:
    """Create the missing environments side by side: pip spends much of its time unpacking, not computing."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        list(pool.map(ensure, names))


if __name__ == "__main__":
    for name in sys.argv[1:] or [p.stem for p in sorted(ENVS.glob("*.txt"))]:
        print(name, ensure(name))
