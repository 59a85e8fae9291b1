"""Fixtures for pytest-fib's own tests: a tiny project (dataset + kernels) per test, and a runner
that invokes pytest on it with fast settings. Builders live in ``helpers.py``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `import helpers` from every test module

import helpers  # noqa: E402

pytest_plugins = ["pytester"]

# Environment variables pytest-fib (and flashinfer-bench's builders) read: a developer's own
# settings must not leak into the runs these tests make.
FIB_ENV = ("FIB_DATASET_PATH", "FIB_SEED", "FIB_DEVICE", "FIB_TIMEOUT", "FIB_CPU_BUDGET",
           "PYTEST_FIB_GPUS", "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in FIB_ENV:
        monkeypatch.delenv(name, raising=False)
    # flashinfer-bench's builders write Python solutions under FIB_CACHE_PATH (default ~/.cache)
    monkeypatch.setenv("FIB_CACHE_PATH", str(tmp_path_factory.getbasetemp() / "fib-cache"))


@pytest.fixture(scope="session")
def preloaded() -> None:
    """Import what an in-process run imports, before any pytester fixture exists: pytester
    removes the modules first imported during a test when the test ends, and extension modules
    (torch, triton, tvm_ffi) crash the process when imported a second time."""
    import importlib

    import flashinfer_bench.bench.evaluators.utils  # noqa: F401
    import flashinfer_bench.bench.utils  # noqa: F401
    import flashinfer_bench.data  # noqa: F401
    import hypothesis  # noqa: F401
    import numpy.random  # noqa: F401
    import torch.utils.serialization  # noqa: F401
    from flashinfer_bench.compile import BuilderRegistry

    BuilderRegistry.get_instance()  # imports the builders' toolchains (triton, tvm_ffi)
    for optional in ("triton", "tvm_ffi"):
        try:
            importlib.import_module(optional)
        except ImportError:
            pass


class Project:
    """A project folder in pytester's tmp dir: ``data/`` (one definition) and ``kernels/``."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.root = pytester.path
        self.data = self.root / "data"
        self.kernels = self.root / "kernels"

    def dataset(self, **kw: Any) -> Project:
        helpers.make_dataset(self.data, **kw)
        self.kernels.mkdir(exist_ok=True)
        return self

    def kit(self, name: str, code: str | None = None, **kw: Any) -> Path:
        return helpers.add_kit(self.kernels, name, code, **kw)

    def args(self, *extra: str) -> list[str]:
        return [f"--fib-dataset={self.data}", *helpers.FAST, *extra]

    def run(self, *extra: str) -> pytest.RunResult:
        """pytest in this process (fast); the solutions still run in pytest-fib's worker."""
        return self.pytester.runpytest(*self.args(*extra))

    def run_subprocess(self, *extra: str, timeout: float = 120) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*self.args(*extra), timeout=timeout)

    def collect(self, *extra: str) -> list[str]:
        """Node ids that ``pytest --collect-only -q`` lists."""
        result = self.pytester.runpytest(*self.args("--collect-only", "-q", *extra))
        return [line for line in result.outlines if "::" in line and " " not in line]


@pytest.fixture
def project(preloaded: None, pytester: pytest.Pytester) -> Project:
    """An empty project; call ``.dataset()`` and ``.kit(...)`` to fill it."""
    return Project(pytester)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "envs: builds a virtual environment with pip (tests/envs.py; cached per "
        "content, skipped when the package index is unreachable)")
