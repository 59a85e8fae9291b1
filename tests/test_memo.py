"""The controller's memo of the reference's answers (memo.py): a definition's second solution costs
the reference no call, whether its items check correctness or re-check timed outputs; the memo
stays within its byte budget but always keeps an item's own newest entries. The worker calls are
counted through PYTEST_FIB_TRACE_CALLS, which is also checked here."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from conftest import Project

from pytest_fib.memo import KEEP_NEWEST, Memo, nbytes


class Blob:
    """Stands in for a tensor: ``n`` bytes."""

    def __init__(self, n: int) -> None:
        self.n = n

    def numel(self) -> int:
        return self.n

    def element_size(self) -> int:
        return 1


def test_nbytes_counts_tensors_in_nested_lists() -> None:
    assert nbytes([Blob(10), (Blob(5), [Blob(1)])]) == 16
    assert nbytes("not a tensor") == 64


def test_the_oldest_go_past_the_budget_but_the_newest_stay_whatever_their_size() -> None:
    memo = Memo(budget=100)
    for k in range(KEEP_NEWEST + 4):
        memo.put(k, Blob(60))
    assert len(memo) == KEEP_NEWEST  # each is over half the budget: only the newest few stay
    assert memo.get(0) is None and memo.get(KEEP_NEWEST + 3) is not None
    assert memo.held == KEEP_NEWEST * 60

    small = Memo(budget=10_000)
    for k in range(50):
        small.put(k, Blob(100))
    assert len(small) == 50 and small.get(0) is not None  # all fit: none goes


def test_a_hit_is_the_newest_again() -> None:
    memo = Memo(budget=KEEP_NEWEST * 10)
    for k in range(KEEP_NEWEST):
        memo.put(k, Blob(10))
    memo.get(0)  # 0 is now the newest: 1 goes first
    memo.put("new", Blob(10))
    assert memo.get(0) is not None and memo.get(1) is None
    memo.put("new", Blob(20))  # put again: counted once
    assert memo.held == KEEP_NEWEST * 10 + 10


def reference_calls(trace: Path) -> collections.Counter[str]:
    """op -> worker calls of the reference, from a PYTEST_FIB_TRACE_CALLS file."""
    ops: collections.Counter[str] = collections.Counter()
    for line in trace.read_text().splitlines():
        op, seconds, who, uuid, ended = line.split("\t")
        float(seconds), float(ended)  # both numbers
        if op in ("reference", "time_reference"):
            ops[op] += 1
    return ops


def test_a_second_solution_of_a_definition_costs_the_reference_nothing(
        project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Items run solution by solution, so the reference's answers for the first solution's
    workloads are needed again only after all of them: a small cache would miss every time."""
    project.dataset()
    project.kit("ok")
    args = ("-m", "correctness or timing", "--fib-trials=3", "--fib-iterations=4")
    monkeypatch.setenv("PYTEST_FIB_TRACE_CALLS", str(tmp_path / "one.tsv"))
    project.run(*args).assert_outcomes(passed=6)
    one = reference_calls(tmp_path / "one.tsv")
    assert one["reference"] >= 3 * 3  # three trials on each of three workloads, at least

    project.kit("ok_again", kind="ok")
    monkeypatch.setenv("PYTEST_FIB_TRACE_CALLS", str(tmp_path / "two.tsv"))
    project.run(*args).assert_outcomes(passed=12)
    assert reference_calls(tmp_path / "two.tsv") == one
