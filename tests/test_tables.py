"""Tables that fit and the contest's score (issue 18): widths from the data, times with 3
significant digits in the unit that fits, compiled-only rows apart, one IQR definition, benchmark
rows named by definition and solution, a per-workload line with -v."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest

from conftest import Project
from pytest_fib import report, tables, timing
from pytest_fib.results import Record


@pytest.mark.parametrize("ms, text", [
    (0.00176, "1.76 µs"), (0.0141, "14.1 µs"), (0.5, "500 µs"), (0.9996, "1.00 ms"),
    (14.1234, "14.1 ms"), (2350.0, "2.35 s"), (0.0000005, "0.500 ns"), (1.7, "1.70 ms"),
    (None, "-"),
])
def test_times_have_three_significant_digits_in_the_unit_that_fits(ms: float | None,
                                                                    text: str) -> None:
    assert tables.fmt_time(ms) == text


def test_columns_fit_the_longest_name() -> None:
    long = "rmsnorm_h4096_triton_persistent_two_pass_vectorized_v7"
    lines = tables.render(["definition", "solution"], [["rmsnorm_h4096", long],
                                                       ["d", long[:-1] + "8"]])
    assert long in lines[1] and long[:-1] + "8" in lines[2]
    assert len({line.index("_triton_persistent") for line in lines[1:]}) == 1  # aligned


@pytest.mark.parametrize("n", range(1, 24))
def test_iqr_is_pytest_benchmarks(n: int) -> None:
    from pytest_benchmark.stats import Stats

    samples = [random.Random(n).random() for _ in range(n)]
    stats = Stats()
    for s in samples:
        stats.update(s)
    assert timing.summarize(samples)["iqr_ms"] == pytest.approx(stats.iqr * 1e3)


def _rec(uuid: str, status: str, speedup: float | None = None) -> Record:
    case = SimpleNamespace(definition=SimpleNamespace(name="d"), solution=SimpleNamespace(name="s"),
                           workload=SimpleNamespace(uuid=uuid), key=uuid)
    rec = Record(case, status=status)  # type: ignore[arg-type]
    if speedup is not None:
        rec.timing = {"clock": "cuda-cupti", "speedup": speedup,  # type: ignore[typeddict-item]
                      "latency_ms": 0.01}
    return rec


def test_score_is_the_mean_over_all_workloads_with_failures_as_zero() -> None:
    recs = [_rec("a", "PASSED", 2.0), _rec("b", "PASSED", 4.0), _rec("c", "INCORRECT_NUMERICAL"),
            _rec("e", "PASSED")]
    score, zeros = tables.score(recs)
    assert score == pytest.approx(1.5)  # (2 + 4 + 0 + 0) / 4
    assert zeros == [("c", "INCORRECT_NUMERICAL"), ("e", "not timed")]
    assert tables.score([_rec("a", "PASSED"), _rec("b", "COMPILED")])[0] is None  # nothing timed
    assert tables.score([_rec("a", "TIMEOUT")])[0] == 0.0


def test_compiled_only_is_counted_apart_from_passed_and_failed() -> None:
    fib = SimpleNamespace(results=[_rec(k, "COMPILED") for k in "abcd"])
    (row,) = report.solution_rows(fib)  # type: ignore[arg-type]
    assert (row["passed"], row["failed"], row["compiled"], row["cases"]) == (0, 0, 4, 4)
    cells = report.table_cells(row)
    assert cells[2:5] == ["0/4", "0", "4"]


def test_summary_table_keeps_long_names_and_lists_what_scores_zero(project: Project) -> None:
    project.dataset(ns=(1, 7))
    long = "a_rather_long_solution_name_that_used_to_be_cut_at_36"
    project.kit(long, kind="ok")
    project.kit("wrong")
    bench_json = project.root / "bench.json"
    result = project.run("-v", f"--benchmark-json={bench_json}", "--fib-report=rep")
    table = result.stdout.str().split("pytest-fib: timing summary", 1)[1]
    assert f"scale2      {long}" in table
    assert "score = mean speedup over all workloads" in table
    assert "scale2 / wrong: 2 of 2 count 0: n:1-w0000001 (INCORRECT_NUMERICAL)" in table
    assert " µs" in table or " ms" in table
    # -v: one line per workload, like run_local.py
    assert any(line.split()[:2] == ["n:7-w0000007", "INCORRECT_NUMERICAL"]
               for line in table.splitlines())
    names = {b["name"]: b["group"] for b in json.loads(bench_json.read_text())["benchmarks"]}
    assert names == {f"scale2::{long}::timing[n:{n}-w{n:07d}]": "scale2" for n in (1, 7)}
    summary = (project.root / "rep" / "summary.md").read_text()
    assert "`kernels::scale2::wrong::correctness[n:1-w0000001]`: **INCORRECT_NUMERICAL** output" \
        in summary
    assert f"| scale2 | {long} | 2/2 | 0 | 0 |" in summary
    # the plot: a PNG (matplotlib, the report extra: ./dev installs it, so this never skips in CI)
    # beside summary.md and embedded in it, for $GITHUB_STEP_SUMMARY
    png = (project.root / "rep" / "speedup_scale2.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert "![scale2](data:image/png;base64," in summary
