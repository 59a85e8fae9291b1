"""Node ids and folders as arguments, and a starter kit used at its own root (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import helpers
import pytest

from conftest import Project
from pytest_fib.local import full_entry_point

W1 = "n:1-w0000001"


def test_a_printed_node_id_selects_exactly_it(project: Project) -> None:
    project.dataset()
    project.kit("ok")
    project.kit("wrong")
    nodeid = f"kernels::scale2::wrong::correctness[{W1}]"
    result = project.run(nodeid, "-rA")
    result.assert_outcomes(failed=1, deselected=13)
    result.stdout.fnmatch_lines([f"FAILED {nodeid}*"])


def test_a_node_id_prefix_selects_everything_below_it(project: Project) -> None:
    project.dataset()
    project.kit("ok")
    project.kit("wrong")
    assert project.collect("kernels::scale2::ok::correctness") == [
        f"kernels::scale2::ok::correctness[n:{n}-w{n:07d}]" for n in helpers.NS]
    assert len(project.collect("kernels::scale2::wrong")) == 7
    # with another selection on top, as pytest composes them
    assert project.collect("kernels::scale2", "-k", "ok and timing and w0000007") == [
        "kernels::scale2::ok::timing[n:7-w0000007]"]


def test_definition_and_solution_folders_select_their_solutions(project: Project) -> None:
    project.dataset(ns=(1,))
    helpers.add_kit(project.kernels / "scale2", "ok")
    helpers.add_kit(project.kernels / "scale2", "wrong")
    helpers.add_kit(project.kernels / "other", "nan")
    folder = project.collect("kernels/scale2/wrong")
    assert folder == ["kernels::scale2::wrong::correctness[n:1-w0000001]",
                      "kernels::scale2::wrong::timing[n:1-w0000001]",
                      "kernels::scale2::wrong::property"]
    assert project.collect("kernels/scale2/wrong/config.toml") == folder
    assert project.collect("kernels/scale2/wrong/solution/python/kernel.py") == folder
    both = project.collect("kernels/scale2")
    assert {i.split("::")[2] for i in both} == {"ok", "wrong"}
    assert len(project.collect("kernels")) == 9  # the anchor itself: everything


def test_a_node_id_that_matches_nothing_is_a_usage_error(project: Project) -> None:
    project.dataset()
    project.kit("ok")
    result = project.run("kernels::scale2::nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*not found: kernels::scale2::nope*"])


def test_a_selection_by_node_id_does_not_hide_a_broken_file(project: Project) -> None:
    project.dataset(ns=(1,))
    project.kit("ok")
    (project.kernels / "broken.json").write_text("{")
    ids = project.collect(f"kernels::scale2::ok::correctness[{W1}]")
    assert len(ids) == 2 and ids[0].startswith("kernels::load[broken.json")
    assert ids[1] == f"kernels::scale2::ok::correctness[{W1}]"


# -- the starter kit at its own root ---------------------------------------------------------------


def _kit_at_root(root: Path, entry: str = "run", files: dict[str, str] | None = None) -> None:
    helpers.make_dataset(root / "data", ns=(1, 7))
    src = root / "solution" / "python"
    src.mkdir(parents=True)
    (root / "config.toml").write_text(helpers.config_toml("mine", entry=entry))
    for name, code in (files or {"kernel.py": helpers.KERNELS["ok"]}).items():
        (src / name).write_text(code)
    # what else a kit checkout holds: a packed solution, scripts; not read as solutions
    (root / "solution.json").write_text(json.dumps({"not": "a solution"}))


def test_starter_kit_at_its_root_runs_with_clean_ids(pytester: pytest.Pytester,
                                                      preloaded: None) -> None:
    _kit_at_root(pytester.path)
    args = [f"--fib-dataset={pytester.path / 'data'}", *helpers.FAST]
    listed = pytester.runpytest(*args, "--collect-only", "-q")
    ids = [line for line in listed.outlines if "::" in line]
    assert ids == ["scale2::mine::correctness[n:1-w0000001]", "scale2::mine::timing[n:1-w0000001]",
                   "scale2::mine::correctness[n:7-w0000007]", "scale2::mine::timing[n:7-w0000007]",
                   "scale2::mine::property"]
    result = pytester.runpytest(*args, "scale2::mine::correctness[n:7-w0000007]", "-rA")
    result.assert_outcomes(passed=1, deselected=4)
    result.stdout.fnmatch_lines(["*the starter kit at the rootdir*"])


def test_starter_kit_at_its_root_activates_the_plugin_alone(pytester: pytest.Pytester) -> None:
    """No --fib-* option, no ini key, no kernels/: config.toml + solution/ is enough."""
    _kit_at_root(pytester.path)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK  # the embedded dataset has no scale2: one load item
    assert "inactive" not in result.stdout.str()
    result.stdout.fnmatch_lines(["load[mine]"])


def test_ambiguous_entry_point_shorthand_is_a_load_failure(pytester: pytest.Pytester,
                                                            preloaded: None) -> None:
    _kit_at_root(pytester.path, files={"a.py": helpers.KERNELS["ok"], "b.py": "X = 1\n"})
    result = pytester.runpytest(f"--fib-dataset={pytester.path / 'data'}", *helpers.FAST)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*entry_point = 'run' does not say which file*a.py, b.py*"])


@pytest.mark.parametrize("entry, language, files, want", [
    ("kernel.py::run", "triton", ["kernel.py", "x.py"], "kernel.py::run"),
    ("run", "triton", ["kernel.py"], "kernel.py::run"),
    ("run", "python", ["helpers.py", "main.py"], "main.py::run"),
    ("run", "cuda", ["kernel.cu", "kernel.cuh", "binding.py"], "kernel.cu::run"),
    ("run", "cuda", ["a.cu", "main.cpp", "k.h"], "main.cpp::run"),
    ("run", "cpp", ["a.cpp", "b.cpp"], None),
    ("run", "triton", [], None),
    ("kernel.py", "python", ["kernel.py"], "kernel.py"),  # not a function name: checked as given
])
def test_entry_point_shorthand(entry: str, language: str, files: list[str],
                               want: str | None) -> None:
    got, problem = full_entry_point(entry, language, files)
    if want is None:
        assert problem and "<file>::run" in problem and not got
    else:
        assert (got, problem) == (want, None)
