"""End to end, issue 14: files in and out that a user can trust.

Load errors cannot hide behind -m/-k, one non-UTF-8 byte fails one load item (not the session),
--fib-resume reports what it recorded, output folders are checked before anything runs, names
from a dataset never choose where files are written, and --fib-traces output is a folder
flashinfer-bench's ``TraceSet.from_path`` reads.
"""

from __future__ import annotations

import json

import pytest

import helpers
from conftest import Project

CI_SELECTION = ("-m", "correctness or property")  # the README's CI recipe


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    return helpers.outcomes(result.reprec.getreports("pytest_runtest_logreport"))  # type: ignore[attr-defined]


def no_internal_error(result: pytest.RunResult) -> None:
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text and "Traceback" not in text, text


# -- 1. a file that does not load is always a failure ----------------------------------------------

def test_broken_config_toml_fails_a_ci_selection(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    broken = project.kit("broken", kind="ok")
    (broken / "config.toml").write_text("[solution\nname = 'broken'\n")
    result = project.run(*CI_SELECTION)
    assert result.ret == 1
    got = outcomes(result)
    assert got["kernels::load[broken_config.toml]"] == "failed"
    assert got["kernels::scale2::ok::correctness[n:1-w0000001]"] == "passed"
    result.stdout.fnmatch_lines(["*files not loaded*", "FAIL */broken/config.toml: not valid TOML*"])


def test_load_failures_survive_k_and_m_together(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    broken = project.kit("broken", kind="ok")
    (broken / "config.toml").write_text("not toml at all = = =\n")
    result = project.run("-m", "timing", "-k", "ok")
    assert result.ret == 1
    assert outcomes(result)["kernels::load[broken_config.toml]"] == "failed"


def test_unknown_definition_fails_a_ci_selection_and_is_listed(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    project.kit("orphan", kind="ok", definition_name="nope")
    result = project.run(*CI_SELECTION)
    assert result.ret == 1
    assert outcomes(result)["kernels::load[orphan]"] == "failed"
    result.stdout.fnmatch_lines(["*files not loaded*",
                                 "FAIL */orphan/config.toml: solution 'orphan' is for definition "
                                 "'nope', which is not in the dataset*"])


def test_newer_schema_files_stay_skips_and_selectable(project: Project) -> None:
    newer = helpers.definition("scale_u8", dtype="uint8")
    project.dataset(ns=(1,), extra=[newer])
    project.kit("ok")
    result = project.run(*CI_SELECTION)
    assert result.ret == 0
    result.assert_outcomes(passed=2, deselected=2)  # its load item is an ordinary skip
    everything = project.run("-m", "correctness", "-rs")
    assert everything.ret == 0


def test_non_utf8_workload_file_is_one_failing_load_item(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    other = helpers.definition("scale3", op_type="scale")
    (project.data / "definitions" / "scale" / "scale3.json").write_text(json.dumps(other))
    line = json.dumps(helpers.workload_line(1, "scale3", tag="v")).encode()
    (project.data / "workloads" / "scale" / "scale3.jsonl").write_bytes(
        line + b"\n" + line.replace(b"random", b"rand\xffom") + b"\n")
    result = project.run(*CI_SELECTION)
    no_internal_error(result)
    assert result.ret == 1
    got = outcomes(result)
    assert got["kernels::load[workloads_scale_scale3.jsonl_2]"] == "failed"
    assert got["kernels::scale2::ok::correctness[n:1-w0000001]"] == "passed"
    result.stdout.fnmatch_lines(["FAIL workloads/scale/scale3.jsonl:2: not UTF-8 text: byte 0xff*"])


def test_non_utf8_definition_file_is_one_failing_load_item(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    text = json.dumps(helpers.definition("scale3"), indent=2).replace("y = 2 * x", "y = 2 \xe9 x")
    (project.data / "definitions" / "scale" / "scale3.json").write_bytes(text.encode("latin-1"))
    result = project.run(*CI_SELECTION)
    no_internal_error(result)
    assert result.ret == 1
    assert outcomes(result)["kernels::load[definitions_scale_scale3.json_4]"] == "failed"
    result.stdout.fnmatch_lines(["FAIL definitions/scale/scale3.json:4: not UTF-8 text: byte 0xe9"
                                 "*save the file as UTF-8"])


def test_binary_header_in_a_starter_kit_fails_that_solution_naming_the_file(
        project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    kit = project.kit("cudakit", kind="ok")
    cuda = kit / "solution" / "cuda"
    cuda.mkdir(parents=True)
    (cuda / "kernel.cu").write_text("// fine\n")
    (cuda / "blob.h").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe")
    (kit / "config.toml").write_text(helpers.config_toml("cudakit").replace(
        'language = "python"', 'language = "cuda"').replace("kernel.py::run", "kernel.cu::run"))
    result = project.run(*CI_SELECTION)
    no_internal_error(result)
    assert result.ret == 1
    assert outcomes(result)["kernels::load[cudakit_solution_cuda_blob.h_1]"] == "failed"
    result.stdout.fnmatch_lines(["FAIL */cudakit/solution/cuda/blob.h:1: not UTF-8 text: byte 0xff"
                                 "*move it out of solution/cuda/*"])


# -- 2. resume reports what it recorded ------------------------------------------------------------

def test_resume_reports_a_recorded_failure_as_the_same_failure(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    project.kit("wrong")
    args = ("--fib-traces=out", "-m", "correctness", "--fib-seed=5")
    first = project.run(*args)
    assert first.ret == 1
    fresh = {r.nodeid: str(r.longrepr) for r in first.reprec.getfailures()}  # type: ignore[attr-defined]
    resumed = project.run(*args, "--fib-resume")
    assert resumed.ret == 1
    resumed.assert_outcomes(passed=1, failed=1, deselected=4)
    again = {r.nodeid: str(r.longrepr) for r in resumed.reprec.getfailures()}  # type: ignore[attr-defined]
    assert list(again) == list(fresh)
    for nodeid, text in fresh.items():
        assert again[nodeid].startswith(text)  # same status and message, then where it came from
        assert "INCORRECT_NUMERICAL" in text and "--fib-resume" in again[nodeid]
    lines = helpers.trace_lines(project.root / "out" / "traces" / "tester" / "scale" /
                                "scale2.jsonl")
    assert len(lines) == 2  # nothing ran again, nothing was written twice


def test_resume_runs_again_when_the_reference_changed(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    args = ("--fib-traces=out", "-m", "correctness", "--fib-seed=5")
    assert project.run(*args).ret == 0
    path = project.data / "definitions" / "scale" / "scale2.json"
    path.write_text(json.dumps(helpers.definition(
        reference="import torch\n\ndef run(x):\n    return x * 3\n")))
    resumed = project.run(*args, "--fib-resume")
    assert resumed.ret == 1  # as a fresh run says: the kernel no longer matches the reference
    resumed.assert_outcomes(failed=1, deselected=2)


def test_resume_sets_a_torn_line_aside_and_says_so(project: Project) -> None:
    from flashinfer_bench.data import TraceSet

    project.dataset(ns=(1, 7))
    project.kit("ok")
    args = ("--fib-traces=out", "-m", "correctness", "--fib-seed=5")
    project.run(*args, "-k", "n:1-").assert_outcomes(passed=1, deselected=4)
    trace_file = project.root / "out" / "traces" / "tester" / "scale" / "scale2.jsonl"
    with trace_file.open("a") as fh:
        fh.write('{"definition": "scale2", "wor')  # a session killed mid-write
    resumed = project.run(*args, "--fib-resume")
    resumed.assert_outcomes(passed=2, deselected=3)
    resumed.stdout.fnmatch_lines(["pytest-fib: --fib-traces traces/tester/scale/scale2.jsonl: a "
                                  "torn last line (29 bytes*) was set aside in .pytest-fib/torn/*"])
    got = TraceSet.from_path(str(project.root / "out"))
    assert sorted(t.workload.axes["n"] for t in got.traces["scale2"]) == [1, 7]


# -- 3. output folders are checked at configure time -----------------------------------------------

@pytest.mark.parametrize("option", ["--fib-traces", "--fib-report", "--fib-pack"])
@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_output_folder_that_cannot_be_used_is_a_usage_error(project: Project, option: str,
                                                            where: str) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    (project.root / "taken").write_text("a file\n")
    target = "taken" if where == "a file" else "taken/sub"
    result = project.run(f"{option}={target}", "-m", "correctness")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "Traceback" not in err and "INTERNALERROR" not in err
    problem = "is a file, not a folder" if where == "a file" else "which is a file, not a folder"
    result.stderr.fnmatch_lines([f"ERROR: pytest-fib: {option}='{target}': *{problem}. Give "
                                 f"{option} a folder pytest-fib can create and write."])


# -- 4. names that become paths --------------------------------------------------------------------

@pytest.mark.parametrize("author", ["../../../escaped", "ABSOLUTE"])
def test_author_never_writes_outside_the_traces_folder(project: Project, author: str) -> None:
    # an absolute author inside this test's own folder (a fixed /tmp path would be shared by
    # every run on the machine, and one run of the old code left it there for good)
    outside = project.root / "absolute-author"
    author = str(outside) if author == "ABSOLUTE" else author
    project.dataset(ns=(1,))
    kit = project.kit("ok")
    (kit / "config.toml").write_text(helpers.config_toml("ok", author=author))
    result = project.run("--fib-traces=out/deep", "--fib-pack=packed", "-m", "correctness")
    no_internal_error(result)
    assert result.ret == 0
    written = [p for p in project.root.rglob("*.jsonl") if project.data not in p.parents]
    assert written and all((project.root / "out" / "deep") in p.parents for p in written)
    (trace,) = [p for p in written if p.parent.name == "scale"]
    assert trace.parent.parent.parent == project.root / "out" / "deep" / "traces"
    assert not outside.exists()


@pytest.mark.parametrize("field", ["author", "name"])
def test_a_name_that_cannot_be_made_safe_is_a_load_error(project: Project, field: str) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    sol = helpers.solution_json("dots", helpers.KERNELS["ok"])
    sol[field] = ".."
    (project.kernels / "dots.json").write_text(json.dumps(sol))
    result = project.run("--fib-traces=out", *CI_SELECTION)
    assert result.ret == 1
    assert outcomes(result)["kernels::load[dots.json]"] == "failed"
    label = "solution name" if field == "name" else "author"
    result.stdout.fnmatch_lines([f"FAIL */dots.json: not a usable Solution JSON: {label} '..' "
                                 "cannot be used as a file or folder name*"])


def test_an_unsafe_definition_name_is_a_load_error(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    bad = helpers.definition("..")
    (project.data / "definitions" / "scale" / "dots.json").write_text(json.dumps(bad))
    result = project.run(*CI_SELECTION)
    assert result.ret == 1
    assert outcomes(result)["kernels::load[definitions_scale_dots.json]"] == "failed"
    result.stdout.fnmatch_lines(["FAIL definitions/scale/dots.json: definition name '..' cannot "
                                 "be used*"])


# -- 5. flashinfer-bench reads the traces folder ---------------------------------------------------

def test_traceset_from_path_reads_a_resumed_traces_folder(project: Project) -> None:
    from flashinfer_bench.data import TraceSet

    project.dataset(ns=(1, 7))
    project.kit("ok")
    project.kit("wrong")
    args = ("--fib-traces=out", "-m", "not property", "--fib-seed=5")
    project.run(*args)
    project.run(*args, "--fib-resume")
    got = TraceSet.from_path(str(project.root / "out"))
    statuses = sorted((t.solution, t.evaluation.status.value) for t in got.traces["scale2"])
    assert statuses == [("ok", "PASSED")] * 4 + [("wrong", "INCORRECT_NUMERICAL")] * 2
    assert (project.root / "out" / ".pytest-fib" / "index.jsonl").is_file()


# -- 6. problems blamed on the right party ---------------------------------------------------------

def test_unknown_baseline_is_a_usage_error(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    result = project.run("--fib-baseline=nosuch", "-m", "correctness")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-fib: --fib-baseline='nosuch': no solution has "
                                 "that name (known: ok)*"])


def test_scalar_for_a_tensor_input_is_the_workloads_fault(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    path = project.data / "workloads" / "scale" / "scale2.jsonl"
    line = helpers.workload_line(1)
    line["workload"]["inputs"]["x"] = {"type": "scalar", "value": 2.0}
    path.write_text(json.dumps(line) + "\n")
    result = project.run("-m", "correctness")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*INVALID_WORKLOAD: *scale2.jsonl:1 (workload w0000001*"])
    assert "RUNTIME_ERROR" not in result.stdout.str()
