"""traces.py: durable FlashInfer-Trace JSONL, readable after a kill, and the resume index."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import helpers
from pytest_fib import dataset, local, traces
from pytest_fib.cases import Case, build_cases
from pytest_fib.settings import Settings, Tolerance
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


def test_traceset_from_path_reads_the_folder_with_its_resume_index(tmp_path: Path, cases) -> None:
    """Issue 14: the side index inside traces/ made TraceSet.from_path raise a ValidationError."""
    from flashinfer_bench.data import TraceSet

    writer = TraceWriter(tmp_path / "out", "cpu")
    for case in cases:
        writer.write(case, "correctness", "PASSED", key=resume_key(case, "correctness",
                                                                    settings()))
    assert (tmp_path / "out" / traces.INDEX).is_file()
    got = TraceSet.from_path(str(tmp_path / "out"))
    assert len(got.traces["scale2"]) == 3


def settings(**changes) -> Settings:
    base = Settings(
        dataset=Path("ds"), dataset_source="test", kernels=Path("kernels"), kernels_source="test",
        solutions="local", seed=0, seed_source="test", device="cpu", gpu_count=0,
        tolerance=Tolerance(), tolerance_overrides=(), cpu_budget=2**30, timeout=60.0, pack=None,
        traces=None, resume=True, report=None, warmup=0, iterations=1, explicit=True)
    return dataclasses.replace(base, **changes)


def test_resume_index_records_status_and_message(tmp_path: Path, cases) -> None:
    writer = TraceWriter(tmp_path / "out", "cpu")
    s = settings()
    writer.write(cases[0], "correctness", "PASSED", key=resume_key(cases[0], "correctness", s))
    writer.write(cases[0], "timing", "PASSED", key=resume_key(cases[0], "timing", s))
    writer.write(cases[1], "correctness", "TIMEOUT", key=resume_key(cases[1], "correctness", s),
                 message="TIMEOUT after 60 s")
    got = recorded(tmp_path / "out")
    file = "traces/alice/scale/scale2.jsonl"
    assert got == {
        resume_key(cases[0], "correctness", s): {"status": "PASSED", "message": "", "file": file},
        resume_key(cases[0], "timing", s): {"status": "PASSED", "message": "", "file": file},
        resume_key(cases[1], "correctness", s): {"status": "TIMEOUT",
                                                 "message": "TIMEOUT after 60 s", "file": file}}
    assert (tmp_path / "out" / traces.INDEX).is_file()
    assert not list((tmp_path / "out" / "traces").rglob(".*"))  # nothing hidden in traces/


def _edited(case: Case, **raw_changes) -> Case:
    definition = dataclasses.replace(case.definition, raw={**case.definition.raw,
                                                           **raw_changes.get("definition", {})})
    workload = dataclasses.replace(case.workload, raw={**case.workload.raw,
                                                       **raw_changes.get("workload", {})})
    return Case(definition, workload, case.solution)


def test_resume_key_covers_everything_a_verdict_depends_on(tmp_path: Path, cases) -> None:
    """Issue 14: the key once left out the reference, workload, tolerances and seed."""
    case, s = cases[0], settings()
    key = resume_key(case, "correctness", s)
    edited_raw = json.loads(json.dumps(case.solution.raw))
    edited_raw["sources"][0]["content"] += "\n# tuned\n"
    kernel = Case(case.definition, case.workload,
                  dataset.SolutionRec(**{**case.solution.__dict__, "raw": edited_raw}))
    reference = _edited(case, definition={"reference": "def run(x):\n    return x * 3\n"})
    inputs = _edited(case, workload={"inputs": {"x": {"type": "scalar", "value": 1}}})
    changed = {
        "kernel": resume_key(kernel, "correctness", s),
        "reference": resume_key(reference, "correctness", s),
        "workload": resume_key(inputs, "correctness", s),
        "atol": resume_key(case, "correctness", settings(tolerance=Tolerance(atol=1e-3))),
        "trials": resume_key(case, "correctness", settings(tolerance=Tolerance(trials=5))),
        "ini override": resume_key(case, "correctness", settings(
            tolerance_overrides=(("scale", Tolerance(rtol=0.5)),))),
        "seed": resume_key(case, "correctness", settings(seed=1)),
        "device": resume_key(case, "correctness", settings(device="cuda")),
        "kind": resume_key(case, "timing", s),
    }
    assert all(k != key for k in changed.values()), changed
    assert len(set(changed.values())) == len(changed)
    assert resume_key(case, "correctness", settings()) == key  # and stable otherwise


def test_resume_key_changes_with_the_harness(monkeypatch: pytest.MonkeyPatch, cases) -> None:
    key = resume_key(cases[0], "correctness", settings())
    monkeypatch.setattr(traces, "harness_version", lambda: "9.9.9+other")
    assert resume_key(cases[0], "correctness", settings()) != key


def test_torn_last_lines_are_set_aside_and_reported(tmp_path: Path, cases) -> None:
    from flashinfer_bench.data import TraceSet

    root = tmp_path / "out"
    writer = TraceWriter(root, "cpu")
    writer.write(cases[0], "correctness", "PASSED", key="k0")
    trace_file = root / "traces" / "alice" / "scale" / "scale2.jsonl"
    with trace_file.open("a") as fh:
        fh.write('{"definition": "scale2", "workl')  # a kill in the middle of a write
    with (root / traces.INDEX).open("a") as fh:
        fh.write('{"key": "k1", "sta')
    said = traces.set_aside_torn(root)
    assert len(said) == 2 and all("torn last line" in line for line in said)
    assert trace_file.read_bytes().endswith(b"\n") and len(helpers.trace_lines(trace_file)) == 1
    aside = sorted((root / traces.SIDE / "torn").iterdir())
    assert [p.read_text() for p in aside] == ['{"key": "k1", "sta\n',
                                              '{"definition": "scale2", "workl\n']
    assert traces.set_aside_torn(root) == []  # nothing left to repair
    assert len(TraceSet.from_path(str(root)).traces["scale2"]) == 1


def test_an_old_index_inside_traces_is_moved_out(tmp_path: Path, cases) -> None:
    root = tmp_path / "out"
    append_line(root / traces.LEGACY_INDEX, {"key": "a|b|c|d", "status": "PASSED"})
    said = traces.set_aside_torn(root)
    assert "moved" in said[0] and not (root / traces.LEGACY_INDEX).exists()
    assert (root / traces.SIDE / "index-legacy.jsonl").is_file()


def test_trace_paths_stay_inside_the_folder(tmp_path: Path, cases) -> None:
    """Issue 14: an author of ../../../x once wrote outside --fib-traces."""
    case = cases[0]
    for author in ("../../../x", "/abs/olute", "a/b", ".hidden", "c:\\d"):
        sol = dataclasses.replace(case.solution, author=author)
        path = TraceWriter(tmp_path / "out", "cpu").path(Case(case.definition, case.workload, sol))
        assert path.parent.parent.parent == tmp_path / "out" / "traces", (author, path)
    sol = dataclasses.replace(case.solution, author="..")
    with pytest.raises(ValueError, match="unsafe name"):
        TraceWriter(tmp_path / "out", "cpu").path(Case(case.definition, case.workload, sol))


def test_trace_statuses_are_flashinfer_bench_statuses() -> None:
    from flashinfer_bench.data import EvaluationStatus

    from pytest_fib.outcome import TRACE_STATUSES, Status

    assert {s.value for s in EvaluationStatus} == TRACE_STATUSES
    # every status the harness records is a trace status, or COMPILED (a skip: no trace line)
    assert {s.recorded_as for s in Status} - TRACE_STATUSES == {None, "COMPILED"}
