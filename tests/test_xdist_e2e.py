"""End to end under pytest-xdist: every item runs exactly once, a definition's items stay on one
worker (xdist_group), and the controller's --benchmark-json holds every worker's timing item."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

import helpers
from conftest import Project

pytest.importorskip("xdist")


@pytest.fixture
def two_definitions(project: Project) -> Project:
    helpers.make_dataset(project.data, name="scale2", ns=(1, 7))
    helpers.make_dataset(project.data, name="scale2b", ns=(1, 7), tag="v")
    project.kernels.mkdir(exist_ok=True)
    project.kit("ok_a", kind="ok")
    project.kit("ok_b", kind="ok", definition_name="scale2b")
    return project


def run_two_workers(project: Project, *args: str) -> tuple[pytest.RunResult,
                                                           list[tuple[str, str, str]]]:
    """(worker, outcome, node id) of every item that ran."""
    result = project.run("-n", "2", "-v", "-m", "not property", *args)
    ran = re.findall(r"\[(gw\d)\] \[\s*\d+%\] (PASSED|FAILED|SKIPPED) (\S+)", result.stdout.str())
    return result, ran


def test_each_item_runs_once_and_benchmarks_reach_the_controller(
        two_definitions: Project) -> None:
    project = two_definitions
    result, ran = run_two_workers(project, "--benchmark-json=out.json")
    assert result.ret == pytest.ExitCode.OK
    ids = [nodeid for _, _, nodeid in ran]
    assert len(ids) == 8 and Counter(ids).most_common(1)[0][1] == 1
    assert {outcome for _, outcome, _ in ran} == {"PASSED"}
    assert {gw for gw, _, _ in ran} == {"gw0", "gw1"}

    data = json.loads((project.root / "out.json").read_text())
    timed = sorted(b["fullname"] for b in data["benchmarks"])
    assert timed == sorted(i for i in ids if "::timing[" in i)
    assert all(b["extra_info"]["latency_ms"] > 0 for b in data["benchmarks"])
    assert all(b["stats"]["rounds"] == 3 for b in data["benchmarks"])


def test_a_definition_stays_on_one_worker(two_definitions: Project) -> None:
    _, ran = run_two_workers(two_definitions)
    workers = {definition: {gw for gw, _, nodeid in ran if f"::{definition}::" in nodeid}
               for definition in ("scale2", "scale2b")}
    assert all(len(gws) == 1 for gws in workers.values()), workers
