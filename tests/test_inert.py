"""An installed pytest-fib is inert where it is not used (issue 16): with no ``kernels/`` folder,
no ``--fib-*`` option and no ``fib_*`` ini key it reads no dataset, probes no GPU, imports no torch
and never errors, whatever ``FIB_*`` environment variables say."""

from __future__ import annotations

import pytest

# Stale or nonsensical settings left in a shell: each would be a usage error for a project that
# uses pytest-fib (tests/test_settings.py), and must mean nothing to one that does not.
STALE_ENV = {"FIB_DATASET_PATH": "/no/such/dataset", "FIB_DEVICE": "cuda", "FIB_SEED": "nope",
             "FIB_TIMEOUT": "-1", "FIB_CPU_BUDGET": "lots"}

# Loaded before pytest_configure: records whether pytest-fib resolved settings, loaded a dataset
# or asked the driver for GPUs, and whether anything heavy was imported.
SPY_CONFTEST = """
import sys

import pytest_fib.session
import pytest_fib.settings

CALLS = []


def spy(name):
    def called(*args, **kw):
        CALLS.append(name)
        raise AssertionError(f"pytest-fib called {name} in a project that does not use it")
    return called


pytest_fib.settings.resolve = spy("resolve")  # reads the dataset path, probes the GPU
pytest_fib.session.load = spy("load")  # reads the dataset
pytest_fib.settings.detect_gpus = spy("detect_gpus")


def pytest_unconfigure(config):
    heavy = [m for m in ("torch", "triton", "tvm_ffi", "modal", "flashinfer_bench")
             if m in sys.modules]
    print(f"inert-check: calls={CALLS} heavy={heavy}")
"""


@pytest.fixture
def stale_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in STALE_ENV.items():
        monkeypatch.setenv(name, value)


def test_stale_env_does_not_break_an_unrelated_project(pytester: pytest.Pytester,
                                                       stale_env: None) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pytest-fib: inactive*"])


def test_stale_env_with_no_tests_is_exit_5(pytester: pytest.Pytester, stale_env: None) -> None:
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stderr.str()
    assert "pytest-fib" not in result.stderr.str()


def test_unrelated_project_resolves_nothing_and_imports_no_torch(pytester: pytest.Pytester,
                                                                 stale_env: None) -> None:
    pytester.makeconftest(SPY_CONFTEST)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-s")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["inert-check: calls=[] heavy=[]"])


@pytest.mark.parametrize("how", ["kernels folder", "option", "ini key"])
def test_any_sign_of_use_activates_it(pytester: pytest.Pytester, stale_env: None,
                                      how: str) -> None:
    """The other side: a project that uses pytest-fib gets its settings checked, env included."""
    args = ["-p", "no:randomly"]
    if how == "kernels folder":
        pytester.mkdir("kernels")
    elif how == "option":
        args.append("--fib-solutions=local")
    else:
        pytester.makeini("[pytest]\nfib_timeout = 30\n")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*FIB_DATASET_PATH*/no/such/dataset*does not exist*"])
