"""End to end: one pytest session over a zoo of Python solutions for ``scale2`` (y = 2x), each
wrong in its own way. The session runs once per module (in a subprocess, with a junit report);
every test reads its verdicts."""

from __future__ import annotations

import re

import pytest

import helpers

SEED = 1234
ZOO = ("ok", "returns", "wrong", "mutate", "hide", "raise", "nowrite", "nan", "ignores")
NS = helpers.NS


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> helpers.Run:
    root = tmp_path_factory.mktemp("zoo")
    helpers.project(root, kits=ZOO)
    return helpers.run_pytest(root, "--fib-dataset=data", *helpers.FAST, f"--fib-seed={SEED}",
                              "-rA")


def items_of(zoo: helpers.Run, solution: str, kind: str) -> dict[str, helpers.Item]:
    return {k: v for k, v in zoo.items.items()
            if k.startswith(f"kernels::scale2::{solution}::{kind}")}


def test_a_wrong_kernel_makes_the_session_fail(zoo: helpers.Run) -> None:
    assert zoo.returncode == 1, zoo.output[-3000:]


def test_junit_lists_every_item(zoo: helpers.Run) -> None:
    """Per solution: a correctness and a timing item per workload, and one property item."""
    assert len(zoo.items) == len(ZOO) * (2 * len(NS) + 1)
    assert "kernels::scale2::ok::correctness[n:33-w0000033]" in zoo.items


@pytest.mark.parametrize("solution", ["ok", "returns"])
def test_correct_kernels_pass_every_item(zoo: helpers.Run, solution: str) -> None:
    mine = {k: v.outcome for k, v in zoo.items.items() if f"::{solution}::" in k}
    assert len(mine) == 2 * len(NS) + 1
    assert set(mine.values()) == {"passed"}, mine


@pytest.mark.parametrize("solution, status, detail", [
    ("wrong", "INCORRECT_NUMERICAL", "1 of"),
    ("mutate", "INPUT_MUTATED", "x (1 of"),
    ("hide", "HARNESS_TAMPERED", "pytest_fib.check.mutated_inputs"),
    ("ignores", "INCORRECT_NUMERICAL", "returned a tensor: does its entry point return"),
    ("raise", "RUNTIME_ERROR", "ValueError: kaboom from the kernel"),
    ("nowrite", "INCORRECT_NUMERICAL", "poison written before the call was left there"),
    ("nan", "INCORRECT_NUMERICAL", "NaN element(s) where the reference is not NaN"),
])
def test_failing_kernels_name_the_check(zoo: helpers.Run, solution: str, status: str,
                                        detail: str) -> None:
    correctness = items_of(zoo, solution, "correctness")
    assert len(correctness) == len(NS)
    for nodeid, item in correctness.items():
        assert item.outcome == "failed", nodeid
        assert item.message.startswith(status), item.message
        assert detail in item.message



@pytest.mark.parametrize("solution", ["wrong", "mutate", "hide", "raise", "nowrite", "nan"])
def test_a_kernel_that_failed_correctness_is_not_timed(zoo: helpers.Run, solution: str) -> None:
    timing = items_of(zoo, solution, "timing")
    assert len(timing) == len(NS)
    for item in timing.values():
        assert item.outcome == "skipped" and "not timed" in item.message


@pytest.mark.parametrize("solution", ["wrong", "mutate", "hide", "raise", "nowrite", "nan"])
def test_a_kernel_that_failed_correctness_is_not_property_tested(zoo: helpers.Run,
                                                                 solution: str) -> None:
    prop = zoo.items[f"kernels::scale2::{solution}::property"]
    assert prop.outcome == "skipped"
    assert f"{len(NS)} correctness item(s) of this solution failed" in prop.message


_MISMATCH = re.compile(r"at \[(\d+), (\d+)\]: got (\S+), expected (\S+)")


@pytest.mark.parametrize("n", NS)
def test_mismatch_message_shows_the_element_and_both_values(zoo: helpers.Run, n: int) -> None:
    """The 'wrong' kernel adds 1.0 to the last element: the message must point at it."""
    (item,) = [v for k, v in items_of(zoo, "wrong", "correctness").items() if f"n:{n}-" in k]
    assert f"1 of {n * helpers.D} elements outside tolerance" in item.message
    (found,) = _MISMATCH.findall(item.message)
    row, col, got, expected = int(found[0]), int(found[1]), float(found[2]), float(found[3])
    assert (row, col) == (n - 1, helpers.D - 1)
    assert got - expected == pytest.approx(1.0, abs=1e-5)


def test_failures_say_how_to_reproduce(zoo: helpers.Run) -> None:
    assert f"reproduce inputs with --fib-seed={SEED}" in zoo.output
    for item in items_of(zoo, "wrong", "correctness").values():
        assert f"--fib-seed={SEED}" in item.message


def test_runtime_error_shows_the_solution_line(zoo: helpers.Run) -> None:
    for item in items_of(zoo, "raise", "correctness").values():
        assert "kernel.py\", line 2, in run" in item.message


def test_timing_summary_lists_the_timed_solutions(zoo: helpers.Run) -> None:
    table = zoo.output.split("pytest-fib: timing summary", 1)[1]
    rows = {line.split()[1]: line for line in table.splitlines()[1:]
            if line.startswith("scale2 ")}
    assert rows["ok"].split()[2] == f"{len(NS)}/{len(NS)}"
    assert rows["wrong"].split()[2] == f"0/{len(NS)}"
