"""dataset.py: the light, torch-free read used at collection, pinned to flashinfer-bench 0.1.2.

The light checks claim to refuse exactly what flashinfer-bench's models refuse, so that
``--collect-only`` names every unloadable file; the mirror tests below hold them to it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

import helpers
from pytest_fib import dataset
from pytest_fib.dataset import check_definition, check_solution, content_hash, load

# -- pins to the installed flashinfer-bench --------------------------------------------------------


def test_known_dtypes_are_flashinfer_bench_dtypes() -> None:
    from flashinfer_bench.data.definition import DType

    assert dataset.KNOWN_DTYPES == {d.value for d in DType}


def test_known_languages_are_flashinfer_bench_languages() -> None:
    from flashinfer_bench.data import SupportedLanguages

    assert dataset.KNOWN_LANGUAGES == {lang.value for lang in SupportedLanguages}


def test_every_known_dtype_has_a_size() -> None:
    assert dataset.KNOWN_DTYPES <= set(dataset.DTYPE_BYTES)


def test_input_types_are_flashinfer_bench_input_types() -> None:
    from flashinfer_bench.data import RandomInput, SafetensorsInput, ScalarInput

    types = {m.model_fields["type"].default for m in (RandomInput, ScalarInput, SafetensorsInput)}
    assert dataset.INPUT_TYPES == types


# -- light checks mirror the models --------------------------------------------------------------


def _edit(base: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    change(out)
    return out


DEF = helpers.definition()
DEFINITION_CASES = {
    "valid": DEF,
    "scalar-input": _edit(DEF, lambda d: d["inputs"].update(s={"shape": None,
                                                               "dtype": "float32"})),
    "no-name": _edit(DEF, lambda d: d.pop("name")),
    "no-reference": _edit(DEF, lambda d: d.pop("reference")),
    "reference-without-run": _edit(DEF, lambda d: d.update(reference="def go(x):\n    return x\n")),
    "axis-type-unknown": _edit(DEF, lambda d: d["axes"].update(n={"type": "dynamic"})),
    "const-without-value": _edit(DEF, lambda d: d["axes"].update(d={"type": "const"})),
    "const-negative": _edit(DEF, lambda d: d["axes"].update(d={"type": "const", "value": -1})),
    "uint8-dtype": _edit(DEF, lambda d: d["inputs"]["x"].update(dtype="uint8")),
    "undefined-axis": _edit(DEF, lambda d: d["inputs"]["x"].update(shape=["n", "k"])),
    "in-place": _edit(DEF, lambda d: d["outputs"].update(x={"shape": ["n", "d"],
                                                           "dtype": "float32"})),
    "no-dtype": _edit(DEF, lambda d: d["inputs"]["x"].pop("dtype")),
}
DEFINITION_DISAGREEMENTS = {
    "reference-syntax-error": _edit(DEF, lambda d: d.update(reference="def run(x):\n    return (")),
    "name-not-a-string": _edit(DEF, lambda d: d.update(name=5)),
    "no-outputs": _edit(DEF, lambda d: d.update(outputs={})),
}


def _model_accepts(model: Any, raw: Any) -> bool:
    try:
        model.model_validate(raw)
    except Exception:  # pydantic.ValidationError, ValueError from validators
        return False
    return True


@pytest.mark.parametrize("raw", [
    *[pytest.param(v, id=k) for k, v in DEFINITION_CASES.items()],
    *[pytest.param(v, id=k) for k, v in DEFINITION_DISAGREEMENTS.items()],
])
def test_check_definition_mirrors_the_model(raw: dict[str, Any]) -> None:
    from flashinfer_bench.data import Definition

    assert (check_definition(raw) is None) == _model_accepts(Definition, raw)


SOL = helpers.solution_json("s", helpers.KERNELS["ok"])
SOLUTION_CASES = {
    "valid": SOL,
    "no-author": _edit(SOL, lambda s: s.pop("author")),
    "language-unknown": _edit(SOL, lambda s: s["spec"].update(language="rust")),
    "entry-without-symbol": _edit(SOL, lambda s: s["spec"].update(entry_point="kernel.py")),
    "entry-twice-separated": _edit(SOL, lambda s: s["spec"].update(entry_point="a::b::c")),
    "entry-file-missing": _edit(SOL, lambda s: s["spec"].update(entry_point="other.py::run")),
    "no-sources": _edit(SOL, lambda s: s.update(sources=[])),
}
SOLUTION_DISAGREEMENTS = {
    "no-target-hardware": _edit(SOL, lambda s: s["spec"].pop("target_hardware")),
    "duplicate-source-path": _edit(SOL, lambda s: s.update(sources=s["sources"] * 2)),
    "binding-unknown": _edit(SOL, lambda s: s["spec"].update(binding="pybind")),
}


@pytest.mark.parametrize("raw", [
    *[pytest.param(v, id=k) for k, v in SOLUTION_CASES.items()],
    *[pytest.param(v, id=k) for k, v in SOLUTION_DISAGREEMENTS.items()],
])
def test_check_solution_mirrors_the_model(raw: dict[str, Any]) -> None:
    from flashinfer_bench.data import Solution

    assert (check_solution(raw) is None) == _model_accepts(Solution, raw)


@pytest.mark.parametrize("name, kind, says", [
    ("uint8-dtype", "unsupported", "uint8"),
    ("in-place", "unsupported", "in-place"),
    ("undefined-axis", "invalid", "undefined axis 'k'"),
    ("reference-without-run", "invalid", "'run'"),
])
def test_check_definition_kind_and_reason(name: str, kind: str, says: str) -> None:
    verdict = check_definition(DEFINITION_CASES[name])
    assert verdict is not None
    assert verdict[0] == kind and says in verdict[1]


# -- load: one bad file never hides the others ---------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return helpers.make_dataset(tmp_path / "ds")


def test_load_reads_definitions_and_workloads(root: Path) -> None:
    ds = load(root, with_solutions=False)
    assert list(ds.definitions) == ["scale2"] and ds.problems == []
    wls = ds.workloads["scale2"]
    assert [(w.axes, w.line) for w in wls] == [({"n": 1}, 1), ({"n": 7}, 2), ({"n": 33}, 3)]
    assert wls[1].uuid == helpers.uuid_for(7)
    assert ds.definitions["scale2"].op_type == "scale"


def test_broken_definition_json_names_file_and_line(root: Path) -> None:
    (root / "definitions" / "scale" / "broken.json").write_text('{\n  "name": "b",\n  oops\n}\n')
    ds = load(root, with_solutions=False)
    assert [(p.path, p.line, p.kind) for p in ds.problems] == [
        ("definitions/scale/broken.json", 3, "invalid")]
    assert ds.problems[0].where == "definitions/scale/broken.json:3"
    assert "not valid JSON" in ds.problems[0].message
    assert list(ds.definitions) == ["scale2"]  # the others still load
    assert len(ds.workloads["scale2"]) == 3


def _append_lines(path: Path, *lines: str) -> None:
    with path.open("a") as fh:
        for line in lines:
            fh.write(line + "\n")


def test_bad_workload_lines_are_problems_with_line_numbers(root: Path) -> None:
    wl = root / "workloads" / "scale" / "scale2.jsonl"
    good = helpers.workload_line(5)
    dup = helpers.workload_line(1)  # same uuid as line 1
    no_axis = _edit(helpers.workload_line(6), lambda r: r["workload"].update(axes={}))
    unknown = helpers.workload_line(8, name="nope")
    bad_input = _edit(helpers.workload_line(9),
                      lambda r: r["workload"]["inputs"].update(x={"type": "zeros"}))
    _append_lines(wl, "{not json", json.dumps(dup), json.dumps(no_axis), json.dumps(unknown),
                  json.dumps(bad_input), "", json.dumps(good))
    ds = load(root, with_solutions=False)
    got = {p.line: p.message for p in ds.problems}
    assert "not valid JSON" in got[4]
    assert "duplicate workload uuid" in got[5]
    assert "axis/axes n" in got[6]
    assert "'nope' is not in the dataset" in got[7]
    assert "unknown type" in got[8]
    assert set(got) == {4, 5, 6, 7, 8}  # the blank line 9 is no problem
    assert [w.axes["n"] for w in ds.workloads["scale2"]] == [1, 7, 33, 5]
    assert ds.workloads["scale2"][-1].line == 10


def test_unsupported_definition_reports_once(root: Path) -> None:
    """Workloads of a definition that cannot be loaded are not reported a second time."""
    u8 = helpers.definition("u8")
    u8["inputs"]["x"]["dtype"] = "uint8"
    helpers.make_dataset(root, name="u8", op_type="u8op")
    (root / "definitions" / "u8op" / "u8.json").write_text(json.dumps(u8))
    ds = load(root, with_solutions=False)
    assert [(p.path, p.kind) for p in ds.problems] == [("definitions/u8op/u8.json", "unsupported")]
    assert "u8" in ds.unusable and "u8" not in ds.workloads


def test_duplicate_definition_names_both_files(root: Path) -> None:
    (root / "definitions" / "scale" / "again.json").write_text(json.dumps(helpers.definition()))
    ds = load(root, with_solutions=False)
    assert len(ds.problems) == 1
    problem = ds.problems[0]
    assert "duplicate definition name 'scale2'" in problem.message
    named = {problem.path, problem.message.rsplit("also in ", 1)[-1].rstrip(")")}
    assert named == {"definitions/scale/scale2.json", "definitions/scale/again.json"}


def test_dataset_solutions_load_only_when_asked(root: Path) -> None:
    sol_dir = root / "solutions" / "tester" / "scale" / "scale2"
    sol_dir.mkdir(parents=True)
    good = helpers.solution_json("good", "def run(x, y): pass")
    (sol_dir / "good.json").write_text(json.dumps(good))
    (sol_dir / "bad.json").write_text(json.dumps({"name": "bad"}))
    assert load(root, with_solutions=False).solutions == []
    ds = load(root, with_solutions=True)
    assert [(s.name, s.origin, s.language) for s in ds.solutions] == [("good", "dataset", "python")]
    assert [p.path for p in ds.problems] == ["solutions/tester/scale/scale2/bad.json"]


def test_definition_sizes(root: Path) -> None:
    d = load(root, with_solutions=False).definitions["scale2"]
    assert d.var_axes == ["n"]
    assert d.shape(d.raw["inputs"]["x"], {"n": 7}) == [7, 64]
    assert d.shape({"shape": None, "dtype": "float32"}, {"n": 7}) is None
    assert d.nbytes({"n": 7}, "inputs") == 7 * 64 * 4
    assert d.nbytes({"n": 7}) == 2 * 7 * 64 * 4


# -- content hash: what --fib-resume keys on -----------------------------------------------------


def test_content_hash_follows_behaviour_not_metadata() -> None:
    base = helpers.solution_json("s", "def run(x, y): pass")
    same = _edit(base, lambda s: s.update(author="someone else", description="new words"))
    assert content_hash(base) == content_hash(same)
    for change in (lambda s: s["sources"][0].update(content="def run(x, y): y.zero_()"),
                   lambda s: s["spec"].update(entry_point="kernel.py::other"),
                   lambda s: s["spec"].update(destination_passing_style=False),
                   lambda s: s.update(name="t")):
        assert content_hash(_edit(base, change)) != content_hash(base)
