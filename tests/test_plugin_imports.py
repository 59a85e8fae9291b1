"""Importing the plugin and collecting a dataset import nothing heavy (torch, triton, tvm_ffi):
an installed pytest-fib must not slow down unrelated runs, and --collect-only stays fast."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import Project

HEAVY = ("torch", "triton", "tvm_ffi", "modal")

CHECK_CONFTEST = f"""
import sys

def pytest_collection_finish(session):
    heavy = [m for m in {HEAVY!r} if m in sys.modules]
    print("pytest-fib-import-check:", len(session.items), "items, heavy:", heavy)
    assert not heavy, f"imported during collection: {{heavy}}"
"""


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = ("import sys, pytest_fib.plugin; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_collection_imports_no_torch(project: Project) -> None:
    project.dataset()
    (project.data / "definitions" / "scale" / "broken.json").write_text("{")
    project.kit("ok")
    project.kit("wrong")
    project.pytester.makeconftest(CHECK_CONFTEST)
    result = project.run_subprocess("--collect-only", "-q", "--fib-solutions=all")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
    result.stdout.fnmatch_lines(["pytest-fib-import-check: 15 items, heavy: []"])
