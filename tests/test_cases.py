"""cases.py: node-id pieces (a contract: -k, --lf and benchmark comparison depend on them) and the
collection-time skip reasons."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import helpers
from pytest_fib import dataset, local
from pytest_fib.cases import blob_skip, budget_skip, build_cases, safe, workload_id
from pytest_fib.dataset import WorkloadRec


def wl(axes: dict[str, int], uid: str, inputs: dict | None = None) -> WorkloadRec:
    raw = {"uuid": uid, "axes": axes, "inputs": inputs or {}}
    return WorkloadRec("d", uid, axes, "w.jsonl", 1, raw)


def test_workload_id_reads_axes_then_short_uuid() -> None:
    got = workload_id(wl({"total_q": 33, "batch_size": 7}, "33bf737d-aaaa-bbbb"))
    assert got == "batch_size:7-total_q:33-33bf737d"  # axes sorted by name


def test_workload_id_without_axes_is_the_short_uuid() -> None:
    assert workload_id(wl({}, "0123456789abcdef")) == "01234567"


def test_workload_id_is_stable() -> None:
    """The same workload read twice (e.g. in two sessions) gets the same id."""
    uid = str(uuid.UUID(int=12345))
    assert workload_id(wl({"n": 7}, uid)) == workload_id(wl({"n": 7}, uid))


def test_workload_ids_unique_for_equal_axes() -> None:
    uids = [str(uuid.UUID(int=i * 2**100 + 1)) for i in range(1, 200)]
    ids = {workload_id(wl({"n": 7}, u)) for u in uids}
    assert len(ids) == len(uids)


@pytest.mark.parametrize("text, expected", [
    ("plain_name-1.2", "plain_name-1.2"),
    ("a::b", "a_b"),
    ("dir/file.json:3", "dir_file.json_3"),
    ("with [brackets] and spaces", "with_brackets_and_spaces"),
    ("///", "_"),
])
def test_safe_removes_node_id_separators(text: str, expected: str) -> None:
    assert safe(text) == expected
    assert not any(c in safe(text) for c in ":/[] ")


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[dataset.Dataset, list[dataset.SolutionRec]]:
    root = helpers.make_dataset(tmp_path / "ds")
    kernels = tmp_path / "kernels"
    helpers.add_kit(kernels, "ok")
    helpers.add_kit(kernels, "orphan", kind="ok", definition_name="nope")
    sols, _ = local.discover(kernels)
    return dataset.load(root, with_solutions=False), sols


def test_build_cases_one_per_workload_and_known_solution(loaded) -> None:
    ds, sols = loaded
    built = build_cases(ds, sols, "cpu", 2**30)
    assert [(c.solution.name, c.workload.axes["n"], c.skip) for c in built] == [
        ("ok", 1, None), ("ok", 7, None), ("ok", 33, None)]
    assert built[0].key == f"scale2::ok::{helpers.uuid_for(1)}"


def test_cpu_budget_skips_big_workloads_with_the_fix(loaded) -> None:
    ds, sols = loaded
    built = build_cases(ds, sols, "cpu", 7 * 64 * 4 * 2)  # n=7 fits exactly, n=33 does not
    skips = {c.workload.axes["n"]: c.skip for c in built}
    assert skips[1] is None and skips[7] is None
    assert skips[33] is not None and "--fib-cpu-budget" in skips[33]


def test_no_budget_on_a_gpu(loaded) -> None:
    ds, _ = loaded
    definition = ds.definitions["scale2"]
    assert budget_skip(definition, ds.workloads["scale2"][2], "cuda", 0) is None


def test_missing_blob_skip_says_how_to_fetch_it(tmp_path: Path) -> None:
    w = wl({"n": 1}, "u", {"x": {"type": "safetensors", "path": "blob/x.safetensors",
                                 "tensor_key": "x"}})
    reason = blob_skip(tmp_path, w)
    assert reason is not None and 'git lfs pull --include "blob/x.safetensors"' in reason
    (tmp_path / "blob").mkdir()
    (tmp_path / "blob" / "x.safetensors").write_text("version https://git-lfs.github.com/spec/v1\n")
    assert blob_skip(tmp_path, w) is not None  # an LFS pointer is not the blob
    (tmp_path / "blob" / "x.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    assert blob_skip(tmp_path, w) is None


def test_case_key_is_independent_of_order(loaded) -> None:
    ds, sols = loaded
    forward = [c.key for c in build_cases(ds, sols, "cpu", 2**30)]
    backward = [c.key for c in build_cases(ds, list(reversed(sols)), "cpu", 2**30)]
    assert sorted(forward) == sorted(backward) and len(set(forward)) == 3

