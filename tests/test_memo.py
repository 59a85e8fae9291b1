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


def fill(memo: Memo, definition: str, n: int, size: int) -> None:
    for k in range(n):
        memo.put((definition, k), Blob(size))


def test_the_newest_stay_whatever_their_size_and_what_leaves_them_stays_if_it_fits() -> None:
    memo = Memo(budget=100)
    fill(memo, "d", KEEP_NEWEST + 4, 60)
    assert all(memo.get(("d", k)) for k in range(4, KEEP_NEWEST + 4))  # the window
    assert memo.get(("d", 0)) is not None  # left the window first, and fit
    assert memo.get(("d", 1)) is None and memo.held == 60  # did not fit beside it


def test_a_second_pass_over_a_cycle_larger_than_the_budget_still_hits() -> None:
    """A plain least-recently-used cache of this size would miss every time: each solution reads
    every workload's entries in the same order."""
    memo = Memo(budget=5 * 10)
    fill(memo, "d", 40, 10)
    hits = sum(memo.get(("d", k)) is not None for k in range(40))
    assert hits >= 5
    assert [memo.get(("d", k)) is not None for k in range(5)] == [True] * 5  # and they stay


def test_room_is_made_from_other_definitions_only() -> None:
    memo = Memo(budget=3 * 10)
    fill(memo, "a", KEEP_NEWEST + 3, 10)  # a's first three are kept
    assert memo.held == 30
    fill(memo, "b", KEEP_NEWEST + 2, 10)  # a's window leaves, then b's first two: a's go
    assert memo.get(("b", 0)) is not None and memo.get(("b", 1)) is not None
    assert memo.held == 30  # one of a's, two of b's
    memo.put(("b", 99), Blob(1000))  # too big to keep once it leaves the window
    fill(memo, "b", KEEP_NEWEST, 1)
    assert memo.get(("b", 99)) is None


def test_a_hit_in_the_window_is_the_newest_again() -> None:
    memo = Memo(budget=0)  # nothing kept behind the window
    fill(memo, "d", KEEP_NEWEST, 10)
    memo.get(("d", 0))  # 0 is now the newest: 1 leaves first
    memo.put(("d", "new"), Blob(10))
    assert memo.get(("d", 0)) is not None and memo.get(("d", 1)) is None
    memo.put(("d", "new"), Blob(20))  # put again: held once
    assert len(memo) == KEEP_NEWEST


def reference_calls(trace: Path) -> collections.Counter[str]:
    """op -> worker calls of the reference, from a PYTEST_FIB_TRACE_CALLS file."""
    ops: collections.Counter[str] = collections.Counter()
    for line in trace.read_text().splitlines():
        op, seconds, _who, _uuid, ended = line.split("\t")
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


def test_full_counts_the_window_too() -> None:
    memo = Memo(budget=100)
    fill(memo, "d", 4, 20)  # all in the window: 80 bytes
    assert not memo.full()
    memo.put(("d", "more"), Blob(20))
    assert memo.full()
