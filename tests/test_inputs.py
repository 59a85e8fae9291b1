"""inputs.py: the controller and the worker build bit-identical inputs from a seed alone."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

import helpers  # noqa: E402
from pytest_fib import inputs  # noqa: E402
from pytest_fib.inputs import make_inputs, perturb, poison, timed_cycles, trial_seed  # noqa: E402
from pytest_fib.models import validate  # noqa: E402


def models(n: int = 7,
           names: tuple[str, str, str] = ("x", "y_scale", "z_idx")) -> tuple[Any, Any]:
    """A definition with a float tensor, a scalar and an int tensor input, declared in ``names``
    order."""
    x, scale, idx = names
    definition = helpers.definition()
    definition["inputs"] = {x: {"shape": ["n", "d"], "dtype": "float32"},
                            scale: {"shape": None, "dtype": "float32"},
                            idx: {"shape": ["n"], "dtype": "int64"}}
    definition["reference"] = f"def run({x}, {scale}, {idx}):\n    return {x} * {scale}\n"
    line = helpers.workload_line(n)["workload"]
    line["inputs"] = {x: {"type": "random"}, scale: {"type": "scalar", "value": 2.0},
                      idx: {"type": "random"}}
    return validate("definition", definition, "d.json"), validate("workload", line, "w.jsonl:1")


def build(seed: int) -> list[Any]:
    definition, workload = models()
    return make_inputs(definition, workload, "cpu", seed, "/nonexistent")


def identical(a: list[Any], b: list[Any]) -> bool:
    """Bit-identical: same dtypes, shapes and bytes (torch.equal would call NaN != NaN)."""
    for x, y in zip(a, b, strict=True):
        if isinstance(x, torch.Tensor):
            if x.dtype != y.dtype or x.shape != y.shape:
                return False
            as_bytes = [t.contiguous().view(torch.uint8).tolist() for t in (x, y)]
            if as_bytes[0] != as_bytes[1]:
                return False
        elif x != y:
            return False
    return True


def test_same_seed_bit_identical_inputs() -> None:
    a, b = build(1234), build(1234)
    assert [type(v).__name__ for v in a] == ["Tensor", "float", "Tensor"]  # declared order
    assert a[0].shape == (7, 64) and a[1] == 2.0 and a[2].dtype == torch.int64
    assert identical(a, b)


def test_different_seed_different_inputs() -> None:
    assert not torch.equal(build(1)[0], build(2)[0])


def test_rng_use_before_does_not_change_inputs() -> None:
    """A solution (or anything) drawing from the global RNG first cannot shift the inputs."""
    first = build(99)
    torch.manual_seed(5)
    torch.randn(1000)
    assert identical(first, build(99))


def test_inputs_leave_the_callers_rng_alone() -> None:
    torch.manual_seed(7)
    expected = torch.randn(3)
    torch.manual_seed(7)
    build(42)
    assert torch.equal(torch.randn(3), expected)


def test_each_call_gets_new_tensors() -> None:
    a, b = build(3), build(3)
    assert a[0].data_ptr() != b[0].data_ptr()


def test_trial_seed_depends_on_the_case_not_the_order() -> None:
    s = trial_seed(1, "scale2", "u1", 0)
    assert s == trial_seed(1, "scale2", "u1", 0)  # reproducible in any process
    others = {trial_seed(2, "scale2", "u1", 0), trial_seed(1, "scale3", "u1", 0),
              trial_seed(1, "scale2", "u2", 0), trial_seed(1, "scale2", "u1", 1)}
    assert s not in others and len(others) == 4
    assert 0 <= s < 2**31


@pytest.mark.parametrize("dtype, check", [
    (torch.float32, lambda t: bool(t.isnan().all())),
    (torch.bfloat16, lambda t: bool(t.isnan().all())),
    (torch.int32, lambda t: bool((t == torch.iinfo(torch.int32).min).all())),
    (torch.int64, lambda t: bool((t == torch.iinfo(torch.int64).min).all())),
    (torch.bool, lambda t: bool(t.all())),
])
def test_poison_is_never_a_plausible_result(dtype, check) -> None:
    assert check(poison(torch.zeros(5, dtype=dtype)))


def test_poisoned_outputs_have_the_definitions_shape() -> None:
    definition, workload = models(5)
    outs = inputs.poisoned_outputs(definition, build(1), "cpu")
    assert len(outs) == 1 and outs[0].shape == (7, 64) and bool(outs[0].isnan().all())


def test_perturb_swaps_two_elements_of_a_row_deterministically() -> None:
    a, b = build(5), build(5)
    before = a[0].clone()
    perturb(a, seed=5, cycle=1)
    perturb(b, seed=5, cycle=1)
    changed = (a[0] != before).nonzero()
    assert len(changed) == 2 and changed[0][0] == changed[1][0]  # one row, two elements
    assert torch.equal(a[0].sort(dim=-1).values, before.sort(dim=-1).values)  # same values
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], build(5)[2])  # ints untouched
    c = build(5)
    perturb(c, seed=5, cycle=2)
    assert not torch.equal(a[0], c[0])


def test_perturbed_probabilities_stay_probabilities() -> None:
    """A sampling definition's reference refused a negative probability that a random
    replacement value had put there (the H200 run of the mini-dataset's timing items)."""
    probs = torch.softmax(torch.randn(4, 16, generator=torch.Generator().manual_seed(0)), -1)
    sums = probs.sum(-1)
    for cycle in range(1, 50):
        perturb([probs], seed=3, cycle=cycle)
    assert bool((probs >= 0).all()) and torch.allclose(probs.sum(-1), sums)


def test_a_constant_input_still_changes() -> None:
    zeros, ones = torch.zeros(3, 4), torch.ones(3, 4)
    perturb([zeros], seed=1, cycle=1)
    perturb([ones], seed=1, cycle=1)
    assert int((zeros != 0).sum()) == 1 and int((ones != 1).sum()) == 1
    assert bool((zeros >= 0).all()) and bool((ones > 0).all())


def test_timed_cycles_cover_every_timed_call_of_a_set() -> None:
    # 3 sets, 7 calls: set 0 is timed at calls 0, 3, 6 -> cycles 1, 2, 3
    assert timed_cycles(0, 3, 7) == [1, 2, 3]
    assert timed_cycles(2, 3, 7) == [1, 2]
    assert sum(len(timed_cycles(k, 3, 7)) for k in range(3)) == 7


def test_inputs_in_declared_order() -> None:
    """The declared order is the call signature of the reference and the solution."""
    definition, workload = models(names=("x", "scale", "idx"))
    assert list(definition.inputs) == ["x", "scale", "idx"]
    values = make_inputs(definition, workload, "cpu", 0, "/nonexistent")
    assert [getattr(v, "shape", None) for v in values] == [(7, 64), None, (7,)]
