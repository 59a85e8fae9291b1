"""End to end: --fib-traces writes FlashInfer-Trace JSONL that survives a SIGKILL, --fib-resume
reports what is recorded without running it (and re-runs a changed kernel), --fib-pack writes
Solution JSON."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import helpers
from conftest import Project

TRACES = Path("out") / "traces" / "tester" / "scale" / "scale2.jsonl"


def traces_of(project: Project) -> list[dict]:
    return helpers.trace_lines(project.root / TRACES)


def validated(lines: list[dict]) -> list:
    from flashinfer_bench.data import Trace

    return [Trace.model_validate(line) for line in lines]


def kind_of(trace) -> str:
    return trace.evaluation.correctness.extra["pytest_fib_item"]


def test_traces_are_valid_and_follow_the_items(project: Project) -> None:
    project.dataset(ns=(1, 7))
    project.kit("ok")
    project.kit("wrong")
    result = project.run("--fib-traces=out", "-m", "not property")
    result.assert_outcomes(passed=4, failed=2, skipped=2)
    got = validated(traces_of(project))
    summary = sorted((t.solution, t.workload.axes["n"], kind_of(t), t.evaluation.status.value)
                     for t in got)
    assert summary == [("ok", 1, "correctness", "PASSED"), ("ok", 1, "timing", "PASSED"),
                       ("ok", 7, "correctness", "PASSED"), ("ok", 7, "timing", "PASSED"),
                       ("wrong", 1, "correctness", "INCORRECT_NUMERICAL"),
                       ("wrong", 7, "correctness", "INCORRECT_NUMERICAL")]
    for t in got:
        assert t.definition == "scale2"
        assert t.workload.uuid == helpers.uuid_for(t.workload.axes["n"])
        if kind_of(t) == "timing":
            perf = t.evaluation.performance
            assert perf.latency_ms > 0 and perf.reference_latency_ms > 0
            assert perf.speedup_factor == pytest.approx(perf.reference_latency_ms /
                                                        perf.latency_ms)
        if t.solution == "wrong":
            assert t.evaluation.correctness.max_absolute_error == pytest.approx(1.0, abs=1e-5)
            assert "outside tolerance" in t.evaluation.log


def test_pack_writes_the_tested_solution_json(project: Project) -> None:
    from flashinfer_bench.data import Solution

    project.dataset(ns=(1,))
    project.kit("ok")
    project.kit("returns")
    project.kit("wrong")
    project.run("--fib-pack=packed", "-m", "correctness", "-k", "not wrong")
    packed = {p.stem: Solution.model_validate_json(p.read_text())
              for p in (project.root / "packed").glob("*.json")}
    assert sorted(packed) == ["ok", "returns"]  # what was tested: not the deselected one
    assert packed["ok"].sources[0].content == helpers.KERNELS["ok"]
    assert packed["ok"].definition == "scale2" and packed["ok"].author == "tester"
    assert packed["returns"].spec.destination_passing_style is False


def test_resume_skips_what_is_recorded_and_reruns_a_changed_kernel(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    project.kit("wrong")
    args = ("--fib-traces=out", "-m", "not property", "-rs")
    project.run(*args).assert_outcomes(passed=2, failed=1, skipped=1)
    written = len(traces_of(project))

    # what was recorded is reported again, as it was: the wrong kernel still fails (issue 14)
    again = project.run(*args, "--fib-resume", "-rA")
    again.assert_outcomes(passed=2, failed=1, skipped=1)
    again.stdout.fnmatch_lines(["*recorded as PASSED in *out/traces/tester/scale/scale2.jsonl*"])
    again.stdout.fnmatch_lines(["SKIPPED *correctness failed: not timed*"])
    again.stdout.fnmatch_lines(["FAILED kernels::scale2::wrong::correctness*INCORRECT_NUMERICAL*"])
    assert "warning" not in again.outlines[-1]
    assert len(traces_of(project)) == written  # nothing ran, nothing was written

    project.kit("wrong", kind="ok")  # the kernel is fixed: new content, new key
    fixed = project.run(*args, "--fib-resume", "-rA")
    fixed.assert_outcomes(passed=4)
    fixed.stdout.fnmatch_lines(["*recorded as PASSED*"])  # the untouched kernel
    newest = validated(traces_of(project))[written:]
    assert sorted((t.solution, kind_of(t), t.evaluation.status.value) for t in newest) == [
        ("wrong", "correctness", "PASSED"), ("wrong", "timing", "PASSED")]


SPECIAL = ("def run(x, y):\n"
           "    y.copy_(x * 2)\n"
           "    if x.shape[0] not in (1, 33):  # right only on the listed shapes\n"
           "        y.add_(1.0)\n")


def test_failed_property_is_not_recorded_as_passed(project: Project) -> None:
    project.dataset(ns=(1, 33))
    project.kit("special", SPECIAL)
    result = project.run("--fib-traces=out", "-m", "correctness or property",
                         "--fib-hypothesis-examples=10", "--fib-seed=3", "-rA")
    result.stdout.fnmatch_lines(["FAILED kernels::scale2::special::property*"])
    passed = [t for t in validated(traces_of(project)) if t.evaluation.status.value == "PASSED"]
    assert [kind_of(t) for t in passed] == ["correctness", "correctness"]


# -- a session killed mid-run ---------------------------------------------------------------------

# Right, but past the first two workloads it waits while a gate file exists: the session is
# killed while it waits, so what was written before the kill is known (no race with a timer).
GATED_OK = """\
import os, time

def run(x, y):
    while x.shape[0] > 2 and os.path.exists({gate!r}):
        time.sleep(0.01)
    y.copy_(x * 2)
"""
KILL_NS = tuple(range(1, 9))


def _workers_in(root: Path) -> list[int]:
    """pids of pytest-fib worker processes running in ``root`` (their inherited cwd)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            if b"pytest_fib.worker" in cmd and Path(os.readlink(entry / "cwd")) == root:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_sigkill_leaves_valid_traces_and_resume_finishes(project: Project) -> None:
    project.dataset(ns=KILL_NS)
    gate = project.root / "gate"
    gate.touch()
    project.kit("gated", GATED_OK.format(gate=str(gate)))
    args = [f"--fib-dataset={project.data}", *helpers.FAST, "--fib-traces=out", "-m",
            "correctness", "-p", "no:cacheprovider"]
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=project.root,
                            env=helpers.clean_env(project.root / ".fib-cache"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = project.root / TRACES
    index = project.root / "out" / ".pytest-fib" / "index.jsonl"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            # the index line follows the trace line: once it has two, so has the trace file
            if index.is_file() and index.read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the session ended before it could be killed"
        assert index.read_bytes().count(b"\n") == 2, "the third item passed the gate"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    before = validated(traces_of(project))  # every line parses and validates
    assert len(before) == 2  # n = 1 and 2; the kill came while n = 3 waited at the gate
    assert path.read_bytes().endswith(b"\n")
    recorded = len(helpers.trace_lines(index))
    assert recorded == len(before)

    # the orphaned worker notices its controller is gone and exits (it polls once a second)
    deadline = time.monotonic() + 60
    while _workers_in(project.root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _workers_in(project.root) == []

    gate.unlink()
    resumed = project.run("--fib-traces=out", "-m", "correctness", "--fib-resume")
    resumed.assert_outcomes(passed=len(KILL_NS), deselected=len(KILL_NS) + 1)  # recorded: resumed
    after = validated(traces_of(project))
    assert len(after) == len(before) + len(KILL_NS) - recorded
    assert sorted({t.workload.axes["n"] for t in after}) == list(KILL_NS)
    assert {t.evaluation.status.value for t in after} == {"PASSED"}
