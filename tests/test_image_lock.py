"""The remote image's pin set (``pytest_fib/remote/image.lock.toml``): well formed, and inside the
ranges pyproject.toml declares and ``bench.SUPPORTED`` accepts. Instant, offline; the slow check that
the set really runs is ``test_environments.py::test_image_lock_runs_a_correctness_and_a_timing_item``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from pytest_fib import bench
from pytest_fib._toml import tomllib
from pytest_fib.remote import image

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def test_every_entry_is_an_exact_pin() -> None:
    lock = image.load()
    assert lock.pins and all("==" in pin for pin in lock.pins)
    assert lock.torch == (f"torch=={lock.version('torch')}",)


def test_pins_lie_in_the_declared_ranges() -> None:
    lock = image.load()
    declared = [Requirement(d) for d in tomllib.loads(PYPROJECT.read_text())["project"]
                ["dependencies"]]
    checked = []
    for req in declared:
        if req.marker is not None and not req.marker.evaluate({"python_version": lock.python}):
            continue
        version = lock.version(req.name)
        assert req.specifier.contains(version, prereleases=True), (
            f"image.lock.toml pins {req.name}=={version}, outside pyproject.toml's {req}")
        checked.append(req.name)
    assert {"pytest", "pytest-benchmark", "hypothesis", "flashinfer-bench"} <= set(checked)


def test_pytest_benchmark_pin_is_supported(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_benchmark

    monkeypatch.setattr(pytest_benchmark, "__version__", image.load().version("pytest-benchmark"))
    assert bench.unsupported() is None


def test_malformed_lock_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "image.lock.toml"
    text = image.LOCK_FILE.read_text().replace('"pytest==9.2.0"', '"pytest>=9"')
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"image.lock.toml: \[packages\] pins must be .*pytest>=9"):
        image.load(bad)
