"""The environments pytest-fib declares and ships are the ones its tests run (issue 16).

* **The remote image's pinned set** (``pytest_fib/remote/image.lock.toml``) is resolved into a fresh
  virtual environment, which then runs a correctness item and a timing item through
  ``pytest --modal --modal-backend local``: a pin that breaks collection, correctness or timing
  fails here. torch is the CPU build of the image's version when PyTorch's CPU index is reachable;
  where it is not (the CI machine reaches only the public index, whose Linux torch is the
  multi-GB CUDA build), it is the CPU build of the torch installed here (2.13.0+cpu when this was
  written), and the test prints which one it used. The rest of the set is the image's, pin for pin.
* **The floors** pyproject.toml declares (the lowest pytest, pytest-benchmark and hypothesis it
  allows) run a representative part of this suite: settings, end-to-end verdicts, timing through
  pytest-benchmark, property items through hypothesis.
* **The Python floor**: on Python 3.10 (where ``tomllib`` does not exist) the plugin loads and
  collects a starter-kit project, reading its ``config.toml`` with ``tomli``.

Each environment is built once per content (``tests/envs.py``: about a minute cold, torch's wheel
most of it; seconds once cached) and the tests skip, saying so, when the package index cannot be
reached. Marked ``envs``: ``-m "not envs"`` leaves them out of a quick local run.
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import envs
import helpers
from pytest_fib._toml import tomllib
from pytest_fib.remote import image

pytestmark = pytest.mark.envs

PYPROJECT = envs.ROOT / "pyproject.toml"

TRITON_SCALE = '''\
import triton
import triton.language as tl


@triton.jit
def _scale(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2.0, mask=mask)


def run(x, y):
    n = x.numel()
    _scale[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
'''

# flashinfer-bench's own dependencies, less flashinfer-python (855 MB installed, never imported by
# pytest-fib) but with numpy, which came with it: the image installs flashinfer-bench the same way
# (image.lock.toml [no_deps]).
FLASHINFER_BENCH_DEPS = ("pydantic>=2.0.0", "safetensors>=0.5.0", "apache-tvm-ffi>=0.1.2",
                         "docstring-parser>=0.16", "numpy")


def triton_kit(kernels: Path) -> None:
    folder = kernels / "tri"
    (folder / "solution" / "triton").mkdir(parents=True)
    (folder / "config.toml").write_text(
        helpers.config_toml("tri").replace('language = "python"', 'language = "triton"'))
    (folder / "solution" / "triton" / "kernel.py").write_text(TRITON_SCALE)


def floors(*, with_markers: bool = True) -> list[str]:
    """pyproject.toml's dependencies, each pinned to the lowest version it allows."""
    from packaging.requirements import Requirement

    out = []
    for text in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]:
        req = Requirement(text)
        low = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        assert low, f"pyproject.toml: {text!r} declares no floor"
        pin = f"{req.name}=={low[0]}"
        out.append(f"{pin}; {req.marker}" if req.marker and with_markers else pin)
    return out


# -- the remote image's pinned set ----------------------------------------------------------------


def test_image_lock_runs_a_correctness_and_a_timing_item(tmp_path: Path) -> None:
    lock = image.load()
    torch_args, torch_note = envs.cpu_torch(lock.version("torch"))
    print(f"image.lock.toml resolved with {torch_note}")
    env = envs.venv("image-lock", [torch_args, list(lock.packages), ["--no-deps", *lock.no_deps]])
    have = envs.installed(env)
    for pin in lock.packages + lock.no_deps:  # the set itself, not something near it
        name, _, version = pin.partition("==")
        assert have.get(envs.normal(name)) == version, (pin, have)

    project = tmp_path / "project"
    helpers.make_dataset(project / "data", ns=(1, 7))
    triton_kit(project / "kernels")
    done = envs.run(env, project, tmp_path, "--modal", "--modal-backend=local",
                    "--fib-dataset=data", *helpers.FAST, "-k", "w0000007",
                    "--junitxml=junit.xml", "--benchmark-json=bench.json", "-rA")
    output = done.stdout + done.stderr
    junit = project / "junit.xml"
    assert junit.is_file(), f"no junit report came home (exit {done.returncode}):\n{output[-6000:]}"
    items = {k: v.outcome for k, v in helpers.junit_items(junit).items()}
    assert items == {"kernels::scale2::tri::correctness[n:7-w0000007]": "passed",
                     "kernels::scale2::tri::timing[n:7-w0000007]": "passed"}, output[-6000:]
    assert done.returncode == 0, output[-6000:]
    benchmarks = json.loads((project / "bench.json").read_text())["benchmarks"]
    assert [b["name"] for b in benchmarks] == ["scale2::tri::timing[n:7-w0000007]"], benchmarks
    assert benchmarks[0]["stats"]["rounds"] == 3  # --fib-iterations=3: device samples fed in


# -- the declared floors ---------------------------------------------------------------------------

FLOOR_TESTS = ("tests/test_settings.py", "tests/test_bench_e2e.py", "tests/test_plugin_e2e.py")


def test_declared_floors_run_the_suite(tmp_path: Path) -> None:
    """The lowest pytest, pytest-benchmark and hypothesis pyproject.toml allows run settings,
    verdicts, timing (pytest-benchmark) and property (hypothesis) tests of this suite."""
    import torch

    torch_args, torch_note = envs.cpu_torch(torch.__version__.split("+")[0])
    print(f"floors {floors()} with {torch_note}")
    pins = [p for p in floors() if not p.startswith("flashinfer-bench")]
    env = envs.venv("floors", [torch_args, [*pins, *FLASHINFER_BENCH_DEPS],
                               ["--no-deps", "flashinfer-bench==0.1.2"]])
    from packaging.version import Version

    have = envs.installed(env)
    lowest = dict(p.split("==") for p in floors(with_markers=False))
    for name in ("pytest", "pytest-benchmark", "hypothesis"):
        assert Version(have[name]) == Version(lowest[name]), (name, have[name], lowest[name])
    done = envs.run(env, envs.ROOT, tmp_path, *FLOOR_TESTS, "-p", "no:randomly",
                    "-p", "no:cacheprovider", "-q", f"--basetemp={tmp_path / 'base'}",
                    timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    assert " passed" in output.splitlines()[-1], output[-2000:]


def _python310() -> str | None:
    candidates = [shutil.which("python3.10"),
                  *sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.10*/bin/python3.10")))]
    for exe in filter(None, candidates):
        done = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=60)
        if done.returncode == 0 and done.stdout.strip() == "(3, 10)":
            return exe
    return None


def test_python_floor_loads_and_collects(tmp_path: Path) -> None:
    """requires-python >= 3.10: on 3.10 the plugin loads and reads a starter kit's config.toml
    (tomli, not the 3.11 tomllib). Collection needs no torch, so none is installed here."""
    python = _python310()
    if python is None:
        pytest.skip("no Python 3.10 interpreter on this machine")
    pins = [p for p in floors() if not p.startswith("flashinfer-bench")]
    env = envs.venv("python310", [pins, ["--no-deps", "flashinfer-bench==0.1.2"]], python=python)
    assert "tomli" in envs.installed(env)
    project = tmp_path / "project"
    helpers.project(project)
    done = envs.run(env, project, tmp_path, "--fib-dataset=data", "--collect-only", "-q",
                    "-p", "no:randomly")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "kernels::scale2::ok::correctness[n:7-w0000007]" in output, output[-4000:]
