"""End to end: timing items feed pytest-benchmark, so its JSON, storage and comparison work on
pytest-fib's times (host clock here; device time on a GPU)."""

from __future__ import annotations

import json

import pytest

import helpers
from conftest import Project

CONTEXT = {"definition", "op_type", "workload_uuid", "axes", "solution", "author", "language",
           "clock", "device", "latency_ms", "reference_latency_ms", "speedup", "samples"}


def test_benchmark_json_holds_every_timing_item_with_context(project: Project) -> None:
    project.dataset()
    project.kit("ok")
    result = project.run("-m", "timing", "--benchmark-json=out.json")
    result.assert_outcomes(passed=len(helpers.NS), deselected=len(helpers.NS) + 1)
    data = json.loads((project.root / "out.json").read_text())
    by_id = {b["fullname"]: b for b in data["benchmarks"]}
    assert sorted(by_id) == sorted(f"kernels::scale2::ok::timing[n:{n}-w{n:07d}]"
                                   for n in helpers.NS)
    for n in helpers.NS:
        b = by_id[f"kernels::scale2::ok::timing[n:{n}-w{n:07d}]"]
        info = b["extra_info"]
        assert CONTEXT <= set(info)
        assert (info["definition"], info["axes"], info["solution"], info["language"],
                info["clock"]) == ("scale2", {"n": n}, "ok", "python", "cpu")
        assert b["stats"]["rounds"] == 3 == info["samples"]  # --fib-iterations=3
        # what pytest-benchmark computed is the measured samples: the same median
        assert b["stats"]["median"] * 1e3 == pytest.approx(info["latency_ms"], rel=1e-6)
        assert info["speedup"] == pytest.approx(info["reference_latency_ms"] / info["latency_ms"])
        assert b["options"]["timer"] == "pytest-fib.cpu"


SLOWER = "import time\n\ndef run(x, y):\n    time.sleep(0.02)\n    y.copy_(x * 2)\n"


def test_compare_fail_catches_a_kernel_made_slower(project: Project) -> None:
    project.dataset(ns=(7,))
    project.kit("kernel", kind="ok")
    storage = f"--benchmark-storage=file://{project.root / 'bench'}"
    project.run("-m", "timing", storage, "--benchmark-save=base").assert_outcomes(
        passed=1, deselected=2)
    assert [p.name for p in (project.root / "bench").rglob("*.json")] == ["0001_base.json"]

    project.kit("kernel", SLOWER)  # same solution, same node id: 20 ms slower per call
    # pytest-benchmark raises from its terminal summary: a subprocess shows the exit code
    result = project.run_subprocess("-m", "timing", storage, "--benchmark-compare=0001",
                                    "--benchmark-compare-fail=median:5%")
    assert result.ret != pytest.ExitCode.OK
    output = result.stdout.str() + result.stderr.str()
    assert "Performance has regressed" in output
    assert "timing[n:7-w0000007] (0001_base) - Field 'median' has failed" in output
