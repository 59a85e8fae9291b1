"""--fib-clock=flashinfer-bench (issue 18): beside the kernel's own time, what flashinfer-bench
0.1.2's method reads for the same calls. Its numbers come from a GPU (CUDA events); here, what
the worker sends, how the runner files it, where a user sees it, and the refusal on a CPU."""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch

from pytest_fib import tables, worker
from pytest_fib.results import Record, junit_properties
from pytest_fib.runner import Runner, judged


def _fake_time_runnable(monkeypatch: pytest.MonkeyPatch, calls: list[Any]) -> None:
    module = ModuleType("flashinfer_bench.bench.timing")

    def time_runnable(fn: Any, args: list[Any], warmup: int, iters: int, device: str) -> float:
        calls.append((fn, args, warmup, iters, device))
        return 0.25

    module.time_runnable = time_runnable  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "flashinfer_bench.bench.timing", module)


def test_the_worker_times_the_solution_as_flashinfer_bench_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its time_runnable, with the outputs appended for a destination-passing solution (as its
    evaluator does), warm-up and iterations as given."""
    calls: list[Any] = []
    _fake_time_runnable(monkeypatch, calls)
    monkeypatch.setattr("pytest_fib.inputs.poisoned_outputs",
                        lambda definition, inputs, device: [torch.empty(3)])
    runnable = SimpleNamespace(metadata=SimpleNamespace(destination_passing_style=True))
    x = torch.ones(3)
    reply = worker.judge_time(runnable, None, [x], "cpu", 2, 7)
    assert reply == {"status": "ok", "judge_ms": 0.25}
    ((fn, args, warmup, iters, device),) = calls
    assert fn is runnable and args[0] is x and len(args) == 2 and (warmup, iters) == (2, 7)


def test_a_failure_of_the_judges_clock_is_reported_not_raised(
        monkeypatch: pytest.MonkeyPatch) -> None:
    module = ModuleType("flashinfer_bench.bench.timing")

    def broken(*args: Any) -> float:
        raise RuntimeError("no CUDA here")

    module.time_runnable = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "flashinfer_bench.bench.timing", module)
    reply = worker.judge_time(lambda *a: None, None, [torch.ones(2)], "cpu", 1, 1)
    assert reply["judge_error"] == "RuntimeError: no CUDA here"
    assert judged(reply) == "RuntimeError: no CUDA here" and judged({"status": "ok",
                                                                     "judge_ms": 2.0}) == 2.0


def _info() -> Any:
    return {"latency_ms": 0.01, "reference_latency_ms": 0.1, "speedup": 10.0, "notes": [],
            "clock": "cuda-cupti"}


def test_the_judges_speedup_sits_beside_the_kernels_own() -> None:
    info = _info()
    Runner.judge_info(info, 0.04, 0.12)
    assert (info["judge_latency_ms"], info["judge_reference_latency_ms"]) == (0.04, 0.12)
    assert info["judge_speedup"] == pytest.approx(3.0) and info["speedup"] == 10.0
    rec = Record(SimpleNamespace(key="k"), status="PASSED", timing=info)  # type: ignore[arg-type]
    props = dict(junit_properties("timing", rec))
    assert props["fib_judge_latency_ms"] == 0.04 and props["fib_judge_speedup"] == 3.0


def test_when_the_judges_clock_read_nothing_the_item_says_why() -> None:
    info = _info()
    Runner.judge_info(info, "RuntimeError: boom", 0.12)
    assert "judge_latency_ms" not in info
    assert info["notes"] == ["flashinfer-bench's clock read nothing: RuntimeError: boom"]


def test_the_per_workload_lines_show_both_clocks() -> None:
    info = _info()
    Runner.judge_info(info, 0.0312, 0.12)
    case = SimpleNamespace(workload=SimpleNamespace(uuid="abcdef12"), key="k")
    lines = tables.workload_lines([Record(case, status="PASSED", timing=info)])  # type: ignore[arg-type]
    assert "flashinfer-bench latency" in lines[0] and "its speedup" in lines[0]
    assert "10.0 µs" in lines[1] and "31.2 µs" in lines[1] and "3.85x" in lines[1]


def test_on_a_cpu_it_is_a_usage_error_naming_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess("--fib-device=cpu", "--fib-clock=flashinfer-bench")
    result.stderr.fnmatch_lines(["*--fib-clock='flashinfer-bench': needs a CUDA GPU*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
