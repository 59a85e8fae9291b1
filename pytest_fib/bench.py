"""The one adapter into pytest-benchmark's internals (pinned: pytest-benchmark >=5.3.1,<5.4).

pytest-benchmark times with a host clock only and has no public way to feed it other times (its
issue #52). Two internals are used, both checked by ``tests/test_bench_adapter.py``, which fails
loudly on a pytest-benchmark that changes them:

* ``BenchmarkFixture._timer``: the clock its runner reads before and after each round. A replay
  clock that advances by our measured device times makes every statistic pytest-benchmark computes,
  prints, saves and compares (``--benchmark-compare-fail=median:5%``) a device time.
* ``BenchmarkFixture._mode``: set when a timing item fails before measuring, so pytest-benchmark
  does not warn that the fixture "was not used".
* ``BenchmarkSession`` fields (``benchmarks``, ``disabled``, ``xdist_warning``): under pytest-xdist
  pytest-benchmark disables itself; each worker's samples ride on its test reports instead, and the
  controller rebuilds them into its own session here, so ``--benchmark-json`` holds every item.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator, Mapping
from typing import Any

# The pytest-benchmark versions this adapter is checked against: from SUPPORTED[0] (inclusive) up to
# SUPPORTED[1] (exclusive), the range pyproject.toml declares. The floor is 5.3.1 because earlier
# releases read ``node._nodeid``, which pytest 9.2 no longer has: every timing item errors at setup
# (issue 16). Checked at start-up by :func:`unsupported`.
SUPPORTED = ((5, 3, 1), (5, 4, 0))
SUPPORTED_SPEC = "pytest-benchmark>=5.3.1,<5.4"


def _parse(text: str) -> tuple[int, int, int]:
    """'5.3.1' -> (5, 3, 1); '5.4.0rc1' -> (5, 4, 0); missing parts are 0."""
    nums = [int(p) for p in re.findall(r"\d+", text)[:3]] + [0, 0, 0]
    return nums[0], nums[1], nums[2]


def version() -> tuple[int, int, int]:
    """The installed pytest-benchmark's (major, minor, micro)."""
    import pytest_benchmark

    return _parse(pytest_benchmark.__version__)


def unsupported() -> str | None:
    """Why the installed pytest-benchmark cannot time items (with the fix), or None when it can."""
    try:
        installed = version()
    except ImportError:
        return (f"pytest-fib: pytest-benchmark is not installed; pytest-fib needs {SUPPORTED_SPEC} "
                f"for its timing items. Fix: pip install '{SUPPORTED_SPEC}'")
    if SUPPORTED[0] <= installed < SUPPORTED[1]:
        return None
    import pytest

    have = ".".join(map(str, installed))
    why = (" (before 5.3.1 it reads node._nodeid, which pytest 9.2 removed: every timing item "
           "would error at setup)" if installed < SUPPORTED[0] else
           " (its internals that pytest-fib feeds device times through are unchecked there)")
    return (f"pytest-fib: pytest-benchmark {have} is installed (with pytest {pytest.__version__}); "
            f"pytest-fib supports {SUPPORTED_SPEC}{why}. Fix: pip install '{SUPPORTED_SPEC}'")


class ReplayClock:
    """A clock whose readings advance by one recorded sample per round: start, end, start, end."""

    def __init__(self, samples_s: list[float], name: str) -> None:
        self.__name__ = name  # pytest-benchmark stores the timer's name in its JSON ("options")
        self._deltas: Iterator[float] = iter(samples_s)
        self._now = 0.0
        self._at_start = True

    def __call__(self) -> float:
        if not self._at_start:
            self._now += next(self._deltas)
        self._at_start = not self._at_start
        return self._now


def display_name(name: str, extra_info: Mapping[str, Any]) -> str:
    """``rmsnorm_h4096::mine::timing[batch_size:1-5b0c2f7e]``: pytest-benchmark names a row by the
    item's own name, which alone does not say which definition and solution it times (issue 18)."""
    if "definition" not in extra_info or "solution" not in extra_info:
        return name
    return f"{extra_info['definition']}::{extra_info['solution']}::{name}"


def feed(benchmark: Any, samples_s: list[float], clock: str,
         extra_info: Mapping[str, Any]) -> None:
    """Record externally measured samples as this item's benchmark (one round per sample)."""
    benchmark.extra_info.update(extra_info)
    if getattr(benchmark, "disabled", False):
        # --benchmark-disable, or an xdist worker (pytest-benchmark disables itself there; the
        # samples ride on the report): measured, just not by pytest-benchmark, so no "fixture was
        # not used" warning (issue 18)
        not_measured(benchmark)
        return
    benchmark.name = display_name(benchmark.name, extra_info)
    if benchmark.group is None and "definition" in extra_info:
        benchmark.group = extra_info["definition"]  # one table per definition
    benchmark._timer = ReplayClock(samples_s, f"pytest-fib.{clock}")
    benchmark.pedantic(lambda: None, rounds=len(samples_s), iterations=1, warmup_rounds=0)


def not_measured(benchmark: Any) -> None:
    """A timing item that failed or skipped before measuring: no "fixture was not used" warning
    (pytest-benchmark warns in its cleanup unless ``_mode`` says how the fixture was used)."""
    benchmark._mode = "pytest-fib: not measured"


def session(config: Any) -> Any:
    return getattr(config, "_benchmarksession", None)


def enable_under_xdist_controller(config: Any) -> None:
    """On the xdist controller: keep pytest-benchmark's outputs on; items arrive as reports."""
    bs = session(config)
    if bs is not None and bs.xdist_warning and not config.getoption("benchmark_disable"):
        bs.disabled = False
        bs.xdist_warning = False


def add_from_report(config: Any, payload: dict[str, Any]) -> None:
    """Rebuild one worker's benchmark (samples + extra_info) in the controller's session."""
    from pytest_benchmark.stats import Metadata

    bs = session(config)
    if bs is None:
        return
    fixture = types.SimpleNamespace(
        name=display_name(payload["name"], payload["extra_info"]), fullname=payload["fullname"],
        group=payload["extra_info"].get("definition"), param=None, params=None,
        extra_info=payload["extra_info"], cprofile_stats=None, has_error=False)
    meta = Metadata(fixture, iterations=1, options={  # type: ignore[no-untyped-call,unused-ignore]
        "disable_gc": False, "timer": f"pytest-fib.{payload['clock']}", "min_rounds": 1,
        "max_time": 0, "min_time": 0, "precision": 0, "confidence": None, "warmup": False})
    for sample in payload["samples_s"]:
        meta.update(sample)  # type: ignore[no-untyped-call,unused-ignore]
    bs.benchmarks.append(meta)
