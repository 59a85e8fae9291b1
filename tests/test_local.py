"""local.py: the user's kernels folder, in the starter-kit layout and as Solution JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import helpers
from pytest_fib import local


def test_starter_kit_is_packed_like_the_starter_kit_does(tmp_path: Path) -> None:
    """What is tested is what ``pack_solution_from_files`` would submit."""
    from flashinfer_bench.agents import pack_solution_from_files
    from flashinfer_bench.data import BuildSpec

    kit = helpers.add_kit(tmp_path, "ok")
    src = kit / "solution" / "python"
    (src / "helper.py").write_text("K = 2\n")
    (src / "notes.md").write_text("not a source\n")
    (src / "sub").mkdir()
    (src / "sub" / "deep.py").write_text("# below the top level: not packed\n")
    rec, problem = local.read_starter_kit(kit)
    assert problem is None and rec is not None
    expected = pack_solution_from_files(str(src), BuildSpec.model_validate(rec.raw["spec"]),
                                        "ok", "scale2", "tester")
    assert [(s["path"], s["content"]) for s in rec.raw["sources"]] == [
        (s.path, s.content) for s in expected.sources]
    assert (rec.name, rec.definition, rec.author, rec.language, rec.origin) == (
        "ok", "scale2", "tester", "python", "local")
    assert rec.path == str(kit / "config.toml")


def test_source_extensions_match_flashinfer_bench() -> None:
    from flashinfer_bench.agents.solution_handler import VALID_SOURCE_EXTENSIONS

    assert local.SOURCE_EXTENSIONS == set(VALID_SOURCE_EXTENSIONS)


def test_packed_kit_validates_as_a_solution(tmp_path: Path) -> None:
    from flashinfer_bench.data import Solution

    rec, _ = local.read_starter_kit(helpers.add_kit(tmp_path, "returns"))
    assert rec is not None
    model = Solution.model_validate(rec.raw)
    assert model.spec.destination_passing_style is False
    assert model.spec.entry_point == "kernel.py::run"


def test_discover_finds_kits_and_json_side_by_side(tmp_path: Path) -> None:
    helpers.add_kit(tmp_path / "group", "kit_one", kind="ok")
    helpers.add_kit(tmp_path, "kit_two", kind="wrong")
    (tmp_path / "as_json.json").write_text(json.dumps(helpers.solution_json("as_json", "x = 1")))
    solutions, problems = local.discover(tmp_path)
    assert problems == []
    assert sorted(s.name for s in solutions) == ["as_json", "kit_one", "kit_two"]


def test_discover_ignores_hidden_cache_and_build_folders(tmp_path: Path) -> None:
    helpers.add_kit(tmp_path, "ok")
    for skipped in (".git", "__pycache__", "build", ".hidden"):
        helpers.add_kit(tmp_path / skipped, "copy", kind="ok")
        (tmp_path / skipped / "x.json").write_text("{broken")
    solutions, problems = local.discover(tmp_path)
    assert [s.name for s in solutions] == ["ok"] and problems == []


def test_json_inside_a_kit_is_not_a_solution(tmp_path: Path) -> None:
    kit = helpers.add_kit(tmp_path, "ok")
    (kit / "tuning.json").write_text('{"block": 128}')
    solutions, problems = local.discover(tmp_path)
    assert [s.name for s in solutions] == ["ok"] and problems == []


def test_missing_folder_is_empty(tmp_path: Path) -> None:
    assert local.discover(tmp_path / "absent") == ([], [])


@pytest.mark.parametrize("config, says", [
    ("this is = = not toml", "not valid TOML"),
    ("[solution]\nname = 'x'\n", "needs [solution]"),
    ("[solution]\nname = 'x'\ndefinition = 'scale2'\n[build]\nlanguage = 'python'\n"
     "entry_point = 'kernel.py::run'\n", "[solution] author"),
    ("[solution]\nname = 'x'\ndefinition = 'scale2'\nauthor = 'a'\n[build]\nlanguage = 'triton'\n"
     "entry_point = 'kernel.py::run'\n", "solution/triton/"),
    ("[solution]\nname = 'x'\ndefinition = 'scale2'\nauthor = 'a'\n[build]\nlanguage = 'python'\n"
     "entry_point = 'kernel.py'\n", "must look like 'file.py::function'"),
])
def test_bad_config_toml_is_a_problem_naming_the_file(tmp_path: Path, config: str,
                                                      says: str) -> None:
    kit = helpers.add_kit(tmp_path, "bad", kind="ok")
    (kit / "config.toml").write_text(config)
    helpers.add_kit(tmp_path, "ok")
    solutions, problems = local.discover(tmp_path)
    assert [s.name for s in solutions] == ["ok"]  # the good kit still loads
    assert len(problems) == 1
    assert problems[0].path == str(kit / "config.toml")
    assert says in problems[0].message


def test_bad_solution_json_is_a_problem_with_line(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{\n  "name": "x",\n  ]\n')
    (tmp_path / "incomplete.json").write_text(json.dumps({"name": "x"}))
    _, problems = local.discover(tmp_path)
    by_path = {Path(p.path).name: p for p in problems}
    assert by_path["broken.json"].line == 3
    assert "not valid JSON" in by_path["broken.json"].message
    assert "not a usable Solution JSON" in by_path["incomplete.json"].message


def test_selftest_table_is_read(tmp_path: Path) -> None:
    kit = helpers.add_kit(tmp_path, "exploit", kind="nowrite")
    with (kit / "config.toml").open("a") as fh:
        fh.write('\n[selftest]\nexpect = "INCORRECT_NUMERICAL"\nwhy = "leaves the poison"\n')
    rec, problem = local.read_starter_kit(kit)
    assert problem is None and rec is not None
    assert rec.expect == {"expect": "INCORRECT_NUMERICAL", "stage": "correctness", "gpu": False,
                          "why": "leaves the poison"}
    assert "selftest" not in rec.raw  # never part of the Solution JSON
