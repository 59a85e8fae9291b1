"""bench.py, the one adapter into pytest-benchmark's internals.

If a pytest-benchmark release renames what bench.py relies on (``BenchmarkFixture._timer`` read by
its runner, ``_mode``, ``Metadata(fixture, iterations, options)``, the session's ``benchmarks``,
``disabled`` and ``xdist_warning``), these tests fail loudly, naming the internal.
"""

from __future__ import annotations

import inspect
import json
import re
import types
from pathlib import Path

import pytest

from pytest_fib import bench
from pytest_fib.bench import ReplayClock

# -- ReplayClock ---------------------------------------------------------------------------------


def test_replay_clock_advances_by_one_sample_per_round() -> None:
    clock = ReplayClock([0.5, 0.25, 2.0], "pytest-fib.cpu")
    readings = [clock() for _ in range(6)]
    assert readings == [0.0, 0.5, 0.5, 0.75, 0.75, 2.75]
    durations = [readings[i + 1] - readings[i] for i in range(0, 6, 2)]
    assert durations == [0.5, 0.25, 2.0]
    assert clock.__name__ == "pytest-fib.cpu"


def test_replay_clock_runs_out_loudly() -> None:
    clock = ReplayClock([1.0], "x")
    clock(), clock(), clock()
    with pytest.raises(StopIteration):
        clock()


# -- the internals, pinned -------------------------------------------------------------------------


def test_pytest_benchmark_version_is_supported() -> None:
    assert bench.unsupported() is None, (
        f"{bench.unsupported()}\nIf a new pytest-benchmark works: check the internals listed in "
        "pytest_fib/bench.py, then widen bench.SUPPORTED and pyproject.toml together")


@pytest.mark.parametrize("text, ok", [("5.3.1", True), ("5.3.9", True), ("5.3.0", False),
                                      ("5.2.3", False), ("5.4.0", False), ("5.4.0rc1", False)])
def test_unsupported_names_the_versions_and_the_fix(monkeypatch: pytest.MonkeyPatch, text: str,
                                                    ok: bool) -> None:
    import pytest_benchmark

    monkeypatch.setattr(pytest_benchmark, "__version__", text)
    message = bench.unsupported()
    if ok:
        assert message is None
    else:
        assert message is not None
        assert f"pytest-benchmark {bench.version()[0]}." in message
        assert f"pip install '{bench.SUPPORTED_SPEC}'" in message


def test_declared_range_is_the_supported_range() -> None:
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert f'"{bench.SUPPORTED_SPEC}"' in pyproject


def test_pyproject_range_matches_the_adapter() -> None:
    import pytest_benchmark

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    spec = re.search(r'"pytest-benchmark([^"]*)"', pyproject)
    assert spec is not None
    from packaging.specifiers import SpecifierSet

    assert pytest_benchmark.__version__ in SpecifierSet(spec.group(1))


def test_runner_reads_the_fixtures_timer_attribute() -> None:
    """feed() swaps ``BenchmarkFixture._timer``; the runner must read it at run time."""
    from pytest_benchmark.fixture import BenchmarkFixture

    runner_params = inspect.signature(
        BenchmarkFixture._make_runner(types.SimpleNamespace(_timer="sentinel", _disable_gc=False),
                                      print, (), {})).parameters
    assert runner_params["timer"].default == "sentinel", (
        "pytest-benchmark's runner no longer takes its clock from BenchmarkFixture._timer: "
        "bench.feed cannot replay device times")


def test_metadata_signature() -> None:
    from pytest_benchmark.stats import Metadata

    assert list(inspect.signature(Metadata).parameters) == ["fixture", "iterations", "options"]


def test_session_fields_used_under_xdist() -> None:
    from pytest_benchmark.session import BenchmarkSession

    init = inspect.getsource(BenchmarkSession.__init__)
    for field in ("self.benchmarks", "self.disabled", "self.xdist_warning"):
        assert field in init, f"BenchmarkSession no longer sets {field} (used by bench.py)"


# -- feed / not_measured through a real pytest-benchmark fixture ---------------------------------

FEED_TEST = """
import pytest
from pytest_fib import bench

def test_fed(benchmark):
    bench.feed(benchmark, [0.001, 0.002, 0.004], "cpu", {"definition": "scale2", "speedup": 2.0})

def test_not_measured(benchmark):
    bench.not_measured(benchmark)
    assert 0, "failed before measuring"

def test_unused_fixture(benchmark):
    assert 0, "no adapter call: pytest-benchmark warns about this one"
"""


def test_feed_makes_the_samples_the_benchmark(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fed=FEED_TEST)
    result = pytester.runpytest("-p", "no:fib", "-p", "no:randomly", "--benchmark-json=out.json",
                                "-W", "always")
    result.assert_outcomes(passed=1, failed=2, warnings=1)
    warned = [line for line in result.outlines if "not used at all" in line]
    assert len(warned) == 1
    warned_at = result.outlines.index(warned[0])
    assert "test_fed.py::test_unused_fixture" in result.outlines[warned_at - 1]
    data = json.loads((pytester.path / "out.json").read_text())
    (fed,) = data["benchmarks"]
    assert fed["name"] == "test_fed"
    assert fed["stats"]["data"] == pytest.approx([0.001, 0.002, 0.004])
    assert fed["stats"]["rounds"] == 3 and fed["stats"]["median"] == pytest.approx(0.002)
    assert fed["stats"]["min"] == pytest.approx(0.001)
    assert fed["stats"]["max"] == pytest.approx(0.004)
    assert fed["extra_info"] == {"definition": "scale2", "speedup": 2.0}
    assert fed["options"]["timer"] == "pytest-fib.cpu"


def test_feed_on_a_disabled_benchmark_keeps_extra_info() -> None:
    fixture = types.SimpleNamespace(extra_info={}, disabled=True)
    bench.feed(fixture, [1.0], "cpu", {"latency_ms": 1.0})
    assert fixture.extra_info == {"latency_ms": 1.0} and not hasattr(fixture, "_timer")


# -- the xdist controller side -------------------------------------------------------------------


def fake_config(**session: object) -> types.SimpleNamespace:
    bs = types.SimpleNamespace(benchmarks=[], **session)
    return types.SimpleNamespace(_benchmarksession=bs, getoption=lambda name: False)


def test_add_from_report_rebuilds_the_benchmark() -> None:
    config = fake_config()
    bench.add_from_report(config, {
        "name": "timing[n:7-w0000007]", "fullname": "kernels::scale2::ok::timing[n:7-w0000007]",
        "extra_info": {"solution": "ok"}, "samples_s": [0.003, 0.001, 0.002], "clock": "cpu"})
    (meta,) = config._benchmarksession.benchmarks
    as_dict = meta.as_dict()
    assert as_dict["fullname"] == "kernels::scale2::ok::timing[n:7-w0000007]"
    assert as_dict["extra_info"] == {"solution": "ok"}
    assert as_dict["stats"]["rounds"] == 3
    assert as_dict["stats"]["median"] == pytest.approx(0.002)
    assert as_dict["options"]["timer"] == "pytest-fib.cpu"


def test_controller_reenables_benchmarks_that_xdist_disabled() -> None:
    config = fake_config(disabled=True, xdist_warning=True)
    bench.enable_under_xdist_controller(config)
    bs = config._benchmarksession
    assert bs.disabled is False and bs.xdist_warning is False


def test_controller_respects_benchmark_disable() -> None:
    config = fake_config(disabled=True, xdist_warning=True)
    config.getoption = lambda name: name == "benchmark_disable"
    bench.enable_under_xdist_controller(config)
    assert config._benchmarksession.disabled is True
