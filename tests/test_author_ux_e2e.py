"""What a kernel author reads and types (issue 18, smaller items): seeds that carry over to
reruns, no spurious pytest-benchmark warnings, markers only where the plugin is used, junit
properties, the environment variables in --help."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import Project


def _seed(result: pytest.RunResult) -> str:
    m = re.search(r"reproduce inputs with --fib-seed=(\d+)", result.stdout.str())
    assert m is not None, result.stdout.str()
    return m.group(1)


def test_fib_seed_last_and_lf_reuse_the_last_seed(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("wrong")
    first = _seed(project.run("-m", "correctness"))
    again = project.run("-m", "correctness", "--fib-seed=last")
    assert _seed(again) == first
    again.stdout.fnmatch_lines(["*(--fib-seed: the last run's seed)*"])
    rerun = project.run("-m", "correctness", "--lf")
    assert _seed(rerun) == first
    rerun.assert_outcomes(failed=1, deselected=2)
    # a seed given wins over --lf, and becomes the last one
    assert _seed(project.run("-m", "correctness", "--lf", "--fib-seed=5")) == "5"
    assert _seed(project.run("-m", "correctness", "--fib-seed=last")) == "5"


def test_fib_seed_last_without_a_cache_is_a_usage_error(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    result = project.run("--fib-seed=last", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--fib-seed*last*cache is off*"])


def test_no_benchmark_fixture_not_used_warning_when_benchmarks_are_disabled(
        project: Project) -> None:
    project.dataset(ns=(1, 7))
    project.kit("ok")
    project.kit("wrong")
    result = project.run("-m", "timing", "--benchmark-disable")
    result.assert_outcomes(passed=2, failed=2, deselected=6)
    assert "was not used" not in result.stdout.str()


def test_markers_are_registered_only_where_the_plugin_is_used(pytester: pytest.Pytester) -> None:
    inactive = pytester.runpytest_subprocess("--markers", "-p", "no:randomly")
    assert not any(re.match(r"@pytest\.mark\.(gpu|cuda|python|timing|correctness):", line)
                   for line in inactive.outlines)
    (pytester.path / "kernels").mkdir()
    active = pytester.runpytest_subprocess("--markers", "-p", "no:randomly")
    active.stdout.fnmatch_lines(["@pytest.mark.correctness: *", "@pytest.mark.gpu: *"])


def test_junit_carries_latency_and_speedup(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    junit = project.root / "junit.xml"
    project.run(f"--junitxml={junit}").assert_outcomes(passed=3)
    props = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        props[case.get("name")] = {p.get("name"): p.get("value") for p in case.iter("property")}
    timed = props["timing[n:1-w0000001]"]
    assert float(timed["fib_latency_ms"]) > 0 and float(timed["fib_speedup"]) > 0
    assert timed["fib_clock"] == "cpu" and timed["fib_status"] == "PASSED"
    assert props["correctness[n:1-w0000001]"]["fib_status"] == "PASSED"


def test_help_names_the_environment_variables(pytester: pytest.Pytester) -> None:
    text = pytester.runpytest_subprocess("--help").stdout.str()
    for name in ("FIB_DATASET_PATH", "FIB_SEED", "FIB_DEVICE", "FIB_TIMEOUT", "FIB_CPU_BUDGET",
                 "FIB_CACHE_PATH"):
        assert name in text, name


# -- compiler errors -------------------------------------------------------------------------------

CACHED = "/root/.cache/flashinfer_bench/cache/tvm_ffi/mine_0ca1/kernel.cu"  # the builder's copy
NINJA_LOG_MESSAGE = f"""TVM-FFI compilation failed for 'mine': ninja exited with status 1
stdout:
[1/2] /usr/local/cuda/bin/nvcc -c {CACHED}
FAILED: cuda_0.o
{CACHED}(29): error: identifier "nope" is undefined
  int x = nope;
ninja: build stopped: subcommand failed."""
ERRORS = f"""\
{CACHED}(29): error: identifier "nope" is undefined
  int x = nope;
1 error detected in the compilation of "{CACHED}"."""


def test_a_compiler_error_is_shown_once_against_the_authors_file(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from pytest_fib.compiler_output import build_error_text

    kit = tmp_path / "kernels" / "mine"
    sol = SimpleNamespace(path=str(kit / "config.toml"), language="cuda",
                          raw={"sources": [{"path": "kernel.cu"}, {"path": "binding.cpp"}]})
    text = build_error_text(sol, NINJA_LOG_MESSAGE, ERRORS)
    mine = f"{kit}/solution/cuda/kernel.cu"
    assert text.count('identifier "nope" is undefined') == 1
    assert f'{mine}(29): error: identifier "nope"' in text
    assert f'compilation of "{mine}"' in text
    assert ".cache/flashinfer_bench" not in text and "FAILED: cuda_0.o" not in text
    # the compile check without a GPU names files bare; a Solution JSON carries its sources
    sol_json = SimpleNamespace(path=str(tmp_path / "s.json"), language="cuda",
                               raw={"sources": [{"path": "kernel.cu"}]})
    text = build_error_text(sol_json, "compilation failed in kernel.cu", "kernel.cu(3): error: x")
    assert text.endswith(f"{tmp_path}/s.json:kernel.cu(3): error: x")
