"""traces.py: durable FlashInfer-Trace JSONL, readable after a kill, and the resume index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import helpers
from pytest_fib import dataset, local, traces
from pytest_fib.cases import Case, build_cases
from pytest_fib.traces import TraceWriter, append_line, read_lines, recorded, resume_key


def test_append_then_read(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "t.jsonl"
    append_line(path, {"a": 1})
    append_line(path, {"b": [2, 3]})
    assert read_lines(path) == [{"a": 1}, {"b": [2, 3]}]
    assert path.read_text().count("\n") == 2  # one line per record


def test_read_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    append_line(path, {"a": 1})
    with path.open("a") as fh:
        fh.write('{"b": 2, "c": [1, ')  # a kill in the middle of a write
    assert read_lines(path) == [{"a": 1}]


def test_read_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_lines(tmp_path / "absent.jsonl") == []


def test_append_after_a_torn_line_keeps_the_new_record(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    append_line(path, {"a": 1})
    with path.open("a") as fh:
        fh.write('{"b": 2, "c": [1, ')
    append_line(path, {"d": 4})
    assert read_lines(path) == [{"a": 1}, {"d": 4}]


@pytest.fixture
def cases(tmp_path: Path) -> list[Case]:
    root = helpers.make_dataset(tmp_path / "ds")
    helpers.add_kit(tmp_path / "kernels", "ok", author="alice")
    sols, _ = local.discover(tmp_path / "kernels")
    return build_cases(dataset.load(root, with_solutions=False), sols, "cpu", 2**30)


def test_writer_lines_are_valid_traces_in_the_dataset_layout(tmp_path: Path, cases) -> None:
    from flashinfer_bench.data import Trace

    writer = TraceWriter(tmp_path / "out", "cpu")
    writer.write(cases[0], "correctness", "PASSED",
                 correctness={"max_absolute_error": 0.0, "max_relative_error": 0.0})
    writer.write(cases[0], "timing", "PASSED", performance={
        "latency_ms": 0.5, "reference_latency_ms": 1.0, "speedup_factor": 2.0})
    writer.write(cases[1], "correctness", "INCORRECT_NUMERICAL", "1 of 448 elements",
                 correctness={"max_absolute_error": 1.0, "max_relative_error": 0.4})
    writer.write(cases[2], "correctness", "RUNTIME_ERROR", "ValueError: kaboom")
    path = tmp_path / "out" / "traces" / "alice" / "scale" / "scale2.jsonl"
    lines = helpers.trace_lines(path)
    assert len(lines) == 4
    parsed = [Trace.model_validate(line) for line in lines]
    assert [t.evaluation.status.value for t in parsed] == [
        "PASSED", "PASSED", "INCORRECT_NUMERICAL", "RUNTIME_ERROR"]
    assert parsed[1].evaluation.performance.speedup_factor == 2.0
    assert parsed[2].evaluation.log == "1 of 448 elements"
    assert [t.workload.uuid for t in parsed] == [helpers.uuid_for(n) for n in (1, 1, 7, 33)]
    assert {t.solution for t in parsed} == {"ok"} and {t.definition for t in parsed} == {"scale2"}


def test_traceset_reads_the_written_folder(tmp_path: Path, cases) -> None:
    """``--fib-traces DIR`` is a dataset root as far as flashinfer-bench's readers go."""
    from flashinfer_bench.data import Trace, load_jsonl_file

    writer = TraceWriter(tmp_path / "out", "cpu")
    for case in cases:
        writer.write(case, "correctness", "PASSED")
    loaded = load_jsonl_file(Trace, tmp_path / "out" / "traces" / "alice" / "scale" /
                             "scale2.jsonl")
    assert len(loaded) == 3


def test_resume_index_keys_on_solution_content(tmp_path: Path, cases) -> None:
    writer = TraceWriter(tmp_path / "out", "cpu")
    writer.write(cases[0], "correctness", "PASSED")
    writer.write(cases[0], "timing", "PASSED")
    writer.write(cases[1], "correctness", "TIMEOUT")
    got = recorded(tmp_path / "out")
    assert got == {resume_key(cases[0], "correctness"): "PASSED",
                   resume_key(cases[0], "timing"): "PASSED",
                   resume_key(cases[1], "correctness"): "TIMEOUT"}
    assert (tmp_path / "out" / "traces" / traces.INDEX).is_file()


def test_resume_key_changes_with_the_kernel(tmp_path: Path, cases) -> None:
    case = cases[0]
    edited_raw = json.loads(json.dumps(case.solution.raw))
    edited_raw["sources"][0]["content"] += "\n# tuned\n"
    edited = Case(case.definition, case.workload,
                  dataset.SolutionRec(**{**case.solution.__dict__, "raw": edited_raw}))
    assert resume_key(edited, "correctness") != resume_key(case, "correctness")
    assert resume_key(case, "timing") != resume_key(case, "correctness")
    assert case.workload.uuid in resume_key(case, "timing")


def test_failures_are_flashinfer_bench_statuses() -> None:
    from flashinfer_bench.data import EvaluationStatus

    assert traces.FAILURES == {s.value for s in EvaluationStatus} - {"PASSED"}
