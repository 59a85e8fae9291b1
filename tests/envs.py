"""Virtual environments for the environment tests (``test_environments.py``, issue 16).

A set of requirements is installed with pip into a fresh virtual environment, once per content:
the environment lives under ``~/.cache/pytest-fib/envs/<kind>-<hash of python + requirements>``
(``FIB_ENVS_CACHE`` moves it) and is reused until a requirement changes, so CI pays the install
(about a minute, torch's wheel most of it) only when a pin moves. pip's own cache keeps the wheels.

pytest-fib itself is never pip-installed there: it is put on ``PYTHONPATH`` from this checkout with
a minimal ``.dist-info`` (its ``pytest11`` entry point), exactly as ``pytest --modal`` ships it to
the remote image (``remote/plan.py``), so the code under test is the working tree's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("FIB_ENVS_CACHE") or Path.home() / ".cache" / "pytest-fib" / "envs")
# PyTorch's CPU wheel index: the one place that serves CPU builds of every torch release.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PIP_INSTALL_TIMEOUT = 1200  # seconds for one `pip install` step (a cold cache on a slow machine)

# What pip prints when it cannot reach an index at all (as opposed to a pin that does not resolve).
UNREACHABLE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|Network is unreachable|No route to host|"
    r"ConnectTimeoutError|connection broken by|ProxyError|Read timed out")


def _pip(python: Path, *args: str, timeout: float = PIP_INSTALL_TIMEOUT,
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    return subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _require(done: subprocess.CompletedProcess[str], what: str) -> None:
    """A failed pip step: skip when no index could be reached, fail (with pip's words) else."""
    if done.returncode == 0:
        return
    output = done.stdout + done.stderr
    if UNREACHABLE.search(output):
        pytest.skip(f"{what}: the package index is unreachable from here "
                    f"({UNREACHABLE.search(output).group(0)})")  # type: ignore[union-attr]
    pytest.fail(f"{what} failed (pip exit {done.returncode}):\n{output[-4000:]}", pytrace=False)


def cpu_torch(version: str) -> tuple[list[str], str]:
    """pip arguments that install a CPU build of torch ``version`` (the image's), and a sentence
    saying which build that is. Without PyTorch's CPU index (only the public index reachable, where
    torch on Linux is the multi-GB CUDA build), the CPU build of the torch running these tests is
    used instead, when its version names it as one (``+cpu``); else the test skips."""
    if _cpu_index_serves(version):
        return (["--index-url", TORCH_CPU_INDEX, f"torch=={version}"],
                f"torch {version}, CPU build (PyTorch's CPU index)")
    try:
        from importlib.metadata import version as installed_version

        here = installed_version("torch")
    except Exception:  # noqa: BLE001 - no torch at all here
        here = ""
    if not here.endswith("+cpu"):
        pytest.skip(f"no CPU build of torch {version} can be had here: PyTorch's CPU index is "
                    f"unreachable and the torch installed here ({here or 'none'}) is not a "
                    "+cpu build")
    return ([f"torch=={here}"],
            f"torch {here} (the CPU build installed here: PyTorch's CPU index, which serves "
            f"torch {version} for CPUs, is unreachable)")


def _cpu_index_serves(version: str) -> bool:
    """Does PyTorch's CPU index list a CPU wheel of torch ``version``? Asked over HTTP with a short
    timeout, not through pip, whose configured local sources could answer in its place."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{TORCH_CPU_INDEX}/torch/", timeout=10) as page:
            text = page.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return False
    return f"torch-{version}%2Bcpu-" in text or f"torch-{version}+cpu-" in text


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def venv(kind: str, steps: list[list[str]], python: str = sys.executable) -> Path:
    """A virtual environment of ``python`` with each step's ``pip install`` arguments applied in
    order; built once per content, then reused. Returns its folder."""
    key = hashlib.sha256(json.dumps([kind, os.path.realpath(python), steps]).encode()).hexdigest()
    env = CACHE / f"{kind}-{key[:16]}"
    ready = env / "pytest-fib-env.json"
    with _locked(CACHE / f".{kind}.lock"):
        if ready.is_file():
            return env
        for old in CACHE.glob(f"{kind}-*"):  # one environment per kind: no pile-up on disk
            shutil.rmtree(old, ignore_errors=True)
        done = subprocess.run([python, "-m", "venv", str(env)], capture_output=True, text=True,
                              timeout=300)
        if done.returncode:
            pytest.fail(f"python -m venv failed:\n{done.stderr[-2000:]}", pytrace=False)
        for step in steps:
            done = _pip(env / "bin" / "python", "install", "--quiet", *step)
            _require(done, f"pip install {' '.join(step)}")
        freeze = _pip(env / "bin" / "python", "freeze", timeout=300).stdout.split()
        ready.write_text(json.dumps({"steps": steps, "freeze": freeze}, indent=1))
    return env


def installed(env: Path) -> dict[str, str]:
    """Package name (normalised as pip does: ``docstring-parser``) -> version, as ``pip freeze``
    saw the environment when it was built."""
    freeze = json.loads((env / "pytest-fib-env.json").read_text())["freeze"]
    return {normal(line.split("==")[0]): line.split("==")[1] for line in freeze if "==" in line}


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def plugin_site(dest: Path) -> Path:
    """A folder to put on PYTHONPATH: this checkout's pytest_fib and its entry point."""
    from pytest_fib import __version__
    from pytest_fib.remote.plan import dist_info

    dest.mkdir(parents=True, exist_ok=True)
    (dest / "pytest_fib").symlink_to(ROOT / "pytest_fib")
    meta = dest / f"pytest_fib-{__version__}.dist-info"
    meta.mkdir()
    for name, text in dist_info(__version__).items():
        (meta / name).write_text(text)
    return dest


def run(env: Path, cwd: Path, scratch: Path, *args: str, timeout: float = 600,
        ) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` in ``env`` with this checkout's plugin, nothing else leaking in;
    ``scratch``: a folder of the caller's for the plugin's site folder and caches."""
    site = plugin_site(Path(tempfile.mkdtemp(prefix="fib-site-", dir=scratch)))
    drop = ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_XDIST_WORKER",
            "PYTEST_CURRENT_TEST", "FIB_DATASET_PATH", "FIB_SEED", "FIB_DEVICE", "FIB_TIMEOUT",
            "FIB_CPU_BUDGET", "PYTEST_FIB_GPUS", "VIRTUAL_ENV")
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ.update(PYTHONPATH=str(site), FIB_CACHE_PATH=str(scratch / "fib-cache"),
                   PATH=f"{env / 'bin'}{os.pathsep}{environ.get('PATH', '')}")
    return subprocess.run([str(env / "bin" / "python"), "-m", "pytest", *args], cwd=cwd,
                          env=environ, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
