"""The clean bill (issue 17): ruff (the rule set in pyproject.toml) and ``mypy --strict`` pass on
``pytest_fib/`` (its deliberately bad ``selftest/`` corpus excluded). CI runs this file with the
rest (``./dev test`` installs the pinned ``dev`` extra); there a missing tool fails, never skips."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(tool: str, *args: str) -> None:
    if importlib.util.find_spec(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed: ./dev installs it (the package's dev extra)")
        pytest.skip(f"{tool} is not installed (pip install -e '.[dev]')")
    done = subprocess.run([sys.executable, "-m", tool, *args], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=600)
    assert done.returncode == 0, f"{tool} {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_ruff() -> None:
    _run("ruff", "check", "pytest_fib")


def test_mypy_strict() -> None:
    # files, strictness and the exclusion come from pyproject.toml; the cache (.mypy_cache,
    # ignored by git) keeps a second run to a few seconds
    _run("mypy")
