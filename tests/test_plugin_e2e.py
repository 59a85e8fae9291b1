"""End to end with pytester: node ids, selection (-k, -m, --lf), seeds, usage errors and unloadable
files, on tiny projects made in the test's tmp dir."""

from __future__ import annotations

import json
import re

import pytest

import helpers
from conftest import Project

OK_IDS = [f"kernels::scale2::ok::{kind}[n:{n}-w{n:07d}]"
          for n in helpers.NS for kind in ("correctness", "timing")]
OK_IDS.append("kernels::scale2::ok::property")


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """nodeid -> outcome, from -rA's short summary (PASSED/FAILED/SKIPPED lines with -rA -v)."""
    found: dict[str, str] = {}
    for line in result.outlines:
        m = re.match(r"(PASSED|FAILED|ERROR|XFAIL|XPASS) (\S+)", line)
        if m:
            found[m.group(2)] = m.group(1).lower()
    return found


# -- a healthy project ---------------------------------------------------------------------------


def test_all_good_exits_zero(project: Project) -> None:
    project.dataset()
    project.kit("ok")
    result = project.run("-rA")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=len(OK_IDS))
    assert outcomes(result) == dict.fromkeys(OK_IDS, "passed")


def test_collect_only_lists_readable_ids_in_order(project: Project) -> None:
    project.dataset()
    project.kit("ok")
    assert project.collect() == OK_IDS


def test_ids_are_stable_across_runs_and_folders(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The same project checked out in two places, collected twice each: the same ids."""
    ids = []
    for where in ("first", "second/deeper"):
        root = pytester.path / where
        root.mkdir(parents=True)
        helpers.project(root, kits=("ok", "wrong"))
        monkeypatch.chdir(root)
        for _ in range(2):
            result = pytester.runpytest("--fib-dataset=data", *helpers.FAST, "--collect-only",
                                        "-q")
            ids.append([line for line in result.outlines if "::" in line])
    assert len(ids[0]) == 2 * len(OK_IDS)
    assert all(i == ids[0] for i in ids)


def test_load_item_ids_do_not_depend_on_the_folder(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ids = []
    for where in ("first", "second"):
        root = pytester.mkdir(where)
        helpers.project(root, kits=("ok",))
        (root / "kernels" / "broken.json").write_text("{")
        monkeypatch.chdir(root)
        result = pytester.runpytest("--fib-dataset=data", *helpers.FAST, "--collect-only", "-q")
        ids.append([line for line in result.outlines if "load[" in line])
    assert len(ids[0]) == 1 and ids[0] == ids[1]


def test_same_name_different_content_gets_unique_ids(project: Project) -> None:
    project.dataset(ns=(1,))
    helpers.add_kit(project.kernels / "a", "twin", kind="ok")
    helpers.add_kit(project.kernels / "b", "twin", kind="wrong")
    ids = project.collect("-m", "correctness")
    assert len(ids) == len(set(ids)) == 2
    assert all(re.match(r"kernels::scale2::twin@[0-9a-f]{8}::correctness", i) for i in ids)


# -- selection -----------------------------------------------------------------------------------


def test_k_selects_by_solution_and_workload(project: Project) -> None:
    project.dataset()
    project.kit("ok")
    project.kit("wrong")
    assert project.collect("-k", "wrong and w0000007") == [
        "kernels::scale2::wrong::correctness[n:7-w0000007]",
        "kernels::scale2::wrong::timing[n:7-w0000007]"]


@pytest.mark.parametrize("marker, kinds", [
    ("correctness", {"correctness"}),
    ("timing", {"timing"}),
    ("property", {"property"}),
    ("python and not timing", {"correctness", "property"}),
    ("scale", {"correctness", "timing", "property"}),  # the op type is a marker too
])
def test_m_selects_item_kinds(project: Project, marker: str, kinds: set[str]) -> None:
    project.dataset()
    project.kit("ok")
    def kind(nodeid: str) -> str:
        return nodeid.split("::")[3].split("[")[0]

    assert project.collect("-m", marker) == [i for i in OK_IDS if kind(i) in kinds]


def test_node_id_on_the_command_line_selects_it(project: Project) -> None:
    project.dataset()
    project.kit("ok")
    assert project.collect(OK_IDS[0]) == [OK_IDS[0]]


def test_timing_alone_times_and_rechecks_outputs(project: Project) -> None:
    """-m timing without correctness first: a correct kernel is timed; a wrong one still fails,
    because the outputs of the timed calls are checked."""
    project.dataset(ns=(1,))
    project.kit("ok")
    project.kit("wrong")
    result = project.run("-m", "timing", "-rA")
    assert outcomes(result) == {
        "kernels::scale2::ok::timing[n:1-w0000001]": "passed",
        "kernels::scale2::wrong::timing[n:1-w0000001]": "failed"}
    result.stdout.fnmatch_lines(["*TIMED_OUTPUT_WRONG*"])


def test_last_failed_reruns_only_failures(project: Project) -> None:
    project.dataset(ns=(1, 7))
    project.kit("ok")
    project.kit("wrong")
    first = project.run("-m", "correctness")
    first.assert_outcomes(passed=2, failed=2, deselected=6)
    again = project.run("-m", "correctness", "--lf", "-rA")
    again.assert_outcomes(failed=2, deselected=8)
    assert set(outcomes(again)) == {"kernels::scale2::wrong::correctness[n:1-w0000001]",
                                    "kernels::scale2::wrong::correctness[n:7-w0000007]"}


# -- seeds ---------------------------------------------------------------------------------------


def test_seed_in_the_header_reproduces_the_failure(project: Project) -> None:
    project.dataset(ns=(7,))
    project.kit("wrong")
    first = project.run("-m", "correctness")
    seed = re.search(r"reproduce inputs with --fib-seed=(\d+)", first.stdout.str())
    assert seed is not None
    # (with CI set, pytest repeats the whole message in the short summary: compare distinct lines)
    shown = {line for line in first.outlines if "got" in line and "expected" in line}
    assert len(shown) == 1
    again = project.run("-m", "correctness", f"--fib-seed={seed.group(1)}")
    assert {line for line in again.outlines if "got" in line and "expected" in line} == shown
    assert f"--fib-seed={seed.group(1)}" in again.stdout.str()


# -- settings reach the verdict ------------------------------------------------------------------


def test_ini_tolerance_for_a_definition_reaches_the_verdict(project: Project) -> None:
    """The 'wrong' kernel is off by 1.0 in one element: within atol=1.5 it passes."""
    project.dataset(ns=(7,))
    project.kit("wrong")
    project.pytester.makeini("[pytest]\nfib_tolerances =\n    scale2: atol=1.5\n")
    result = project.run("-m", "correctness")
    result.assert_outcomes(passed=1, deselected=2)


def test_a_tolerance_zeros_would_pass_is_not_discriminative(project: Project) -> None:
    project.dataset(ns=(7,))
    project.kit("ok")
    result = project.run("-m", "correctness", "--fib-atol=100", "-rs")
    result.assert_outcomes(skipped=1, deselected=2)
    result.stdout.fnmatch_lines(["*NOT_DISCRIMINATIVE: an all-zeros output passes*"])


# -- usage errors and unloadable files -----------------------------------------------------------


@pytest.mark.parametrize("how, source", [
    ("flag", "--fib-dataset"), ("env", "FIB_DATASET_PATH"), ("ini", "ini fib_dataset")])
def test_bad_dataset_path_is_a_usage_error(pytester: pytest.Pytester,
                                           monkeypatch: pytest.MonkeyPatch, how: str,
                                           source: str) -> None:
    args = []
    if how == "flag":
        args.append("--fib-dataset=no/such/dir")
    elif how == "env":  # a project that uses pytest-fib (it has kernels/): env is honoured
        monkeypatch.setenv("FIB_DATASET_PATH", "no/such/dir")
        pytester.mkdir("kernels")
    else:
        pytester.makeini("[pytest]\nfib_dataset = no/such/dir\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert source in err and str(pytester.path / "no" / "such" / "dir") in err
    assert "Traceback" not in err


def test_unrelated_project_is_untouched(pytester: pytest.Pytester) -> None:
    """No kernels/ folder and no --fib-* option: no items added, the run goes on as usual."""
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["pytest-fib: inactive*"])


@pytest.fixture
def broken_project(project: Project) -> Project:
    project.dataset()
    defs = project.data / "definitions" / "scale"
    (defs / "broken.json").write_text('{\n  "name": "broken",\n  "op_type": oops\n}\n')
    u8 = helpers.definition("u8def")
    u8["inputs"]["x"]["dtype"] = "uint8"
    (defs / "u8def.json").write_text(json.dumps(u8))
    project.kit("ok")
    project.kit("orphan", kind="ok", definition_name="nope")
    project.kit("for_u8", kind="ok", definition_name="u8def")
    bad = project.kit("badtoml", kind="ok")
    (bad / "config.toml").write_text("this is = = not toml\n")
    return project


def test_unloadable_files_become_items_and_the_rest_runs(broken_project: Project) -> None:
    result = broken_project.run("--fib-solutions=all", "-m", "not timing and not property",
                                "-rA")
    got = outcomes(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert got["data::load[definitions_scale_broken.json_3]"] == "failed"
    orphan = [k for k in got if k.endswith("::load[orphan]")]
    assert len(orphan) == 1 and got[orphan[0]] == "failed"
    badtoml = [k for k in got if "badtoml_config.toml" in k]
    assert len(badtoml) == 1 and got[badtoml[0]] == "failed"
    assert [got[f"kernels::scale2::ok::correctness[n:{n}-w{n:07d}]"] for n in helpers.NS] == [
        "passed"] * 3
    text = result.stdout.str()
    assert "definitions/scale/broken.json:3: not valid JSON" in text
    assert "solution 'orphan' is for definition 'nope'" in text
    assert "badtoml/config.toml: not valid TOML" in text
    result.stdout.fnmatch_lines_random([
        "SKIPPED*not loadable by flashinfer-bench 0.1.2*definitions/scale/u8def.json*uint8*",
        "SKIPPED*for_u8/config.toml: its definition 'u8def' cannot be loaded*"])


def test_unloadable_dataset_files_are_items_by_default(broken_project: Project) -> None:
    assert any("broken.json" in i for i in broken_project.collect())


# -- a harness error is reported, never an INTERNALERROR -----------------------------------------

FLAKY = ("calls = []\n\n"
         "def run(x, y):\n"
         "    calls.append(1)\n"
         "    if len(calls) == 1:\n"
         "        raise RuntimeError('only the first call fails')\n"
         "    y.copy_(x * 2)\n")


def test_a_non_verdict_exception_fails_its_item_only(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("flaky", FLAKY)
    result = project.run("-m", "property", "--fib-hypothesis-examples=3")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(failed=1, deselected=2)
