"""check.py: the verdicts. flashinfer-bench's tolerance rule (an element fails only if
abs > atol AND rel > rtol), made strict where it is gameable (NaN, poison, mutated inputs)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from pytest_fib import check  # noqa: E402
from pytest_fib.check import compare_outputs, compare_tensor, mutated_inputs  # noqa: E402

NAN, INF = float("nan"), float("inf")


def verdict(out: list[float], ref: list[float], atol: float = 0.1, rtol: float = 0.1,
            required: float = 1.0) -> check.Verdict:
    return compare_tensor("y", torch.tensor(out), torch.tensor(ref), atol, rtol, required)


# -- the tolerance rule --------------------------------------------------------------------------


@pytest.mark.parametrize("out, ref, passed", [
    ([1.0], [1.0], True),
    ([100.5], [100.0], True),  # abs 0.5 > atol, but rel 0.005 <= rtol
    ([0.05], [0.001], True),  # rel 49 > rtol, but abs 0.049 <= atol
    ([1.5], [1.0], False),  # abs 0.5 > atol and rel 0.5 > rtol
    ([-1.5], [-1.0], False),
    ([1.0], [-1.0], False),
])
def test_an_element_fails_only_outside_both_tolerances(out, ref, passed) -> None:
    assert verdict(out, ref).passed is passed


def test_boundary_is_inclusive() -> None:
    """abs == atol is not 'greater than atol': it passes."""
    assert verdict([1.25], [1.0], atol=0.25, rtol=0.0).passed


@pytest.mark.parametrize("out, ref", [
    ([1.0, NAN], [1.0, 2.0]),  # NaN where the reference is finite
    ([1.0, INF], [1.0, 2.0]),  # inf where the reference is finite
    ([1.0, 5.0], [1.0, NAN]),  # a NaN reference is not a free pass
    ([1.0, 5.0], [1.0, INF]),
    ([1.0, -INF], [1.0, INF]),
    ([1.0, NAN], [1.0, INF]),
])
def test_non_finite_values_must_match_exactly(out, ref) -> None:
    v = verdict(out, ref, atol=1e9, rtol=1e9)  # any finite value would pass these tolerances
    assert v.status == "INCORRECT_NUMERICAL"


@pytest.mark.parametrize("out, ref", [
    ([1.0, NAN], [1.0, NAN]),
    ([INF, -INF], [INF, -INF]),
])
def test_matching_non_finite_values_pass(out, ref) -> None:
    assert verdict(out, ref).passed


def test_matched_ratio_allows_that_many_misses() -> None:
    ref = [1.0] * 100
    one_off = [1.0] * 99 + [9.0]
    two_off = [1.0] * 98 + [9.0, 9.0]
    assert verdict(one_off, ref, required=0.99).passed
    assert verdict(one_off, ref, required=0.99).matched_ratio == pytest.approx(0.99)
    v = verdict(two_off, ref, required=0.99)
    assert not v.passed and v.matched_ratio == pytest.approx(0.98)
    assert "matched ratio 0.980000 < required 0.99" in v.message


def test_poison_left_fails_even_within_the_matched_ratio() -> None:
    """NaN where the reference is finite means 'not written': never covered by the ratio."""
    v = verdict([1.0] * 99 + [NAN], [1.0] * 100, required=0.5)
    assert v.status == "INCORRECT_NUMERICAL"
    assert "1 element(s) NaN where the reference is finite" in v.message
    assert "poison" in v.message


def test_message_lists_first_mismatches_with_both_values() -> None:
    ref = torch.zeros(4, 8)
    out = ref.clone()
    out[1, 2] = 7.0
    out[3, 5] = -3.0
    v = compare_tensor("y", out, ref, 0.01, 0.01, 1.0)
    lines = v.message.splitlines()
    assert lines[0].startswith("output 'y': 2 of 32 elements outside tolerance")
    assert "at [1, 2]: got 7.0, expected 0.0" in v.message
    assert "at [3, 5]: got -3.0, expected 0.0" in v.message
    assert v.max_abs == 7.0


def test_message_shows_at_most_the_first_few() -> None:
    v = compare_tensor("y", torch.ones(100), torch.zeros(100), 0.01, 0.01, 1.0)
    shown = [line for line in v.message.splitlines() if line.strip().startswith("at [")]
    assert len(shown) == check.SHOW
    assert shown[0].strip().startswith("at [0]:")


def test_stats_on_pass() -> None:
    v = verdict([1.05, 2.0], [1.0, 2.0])
    assert v.passed and v.max_abs == pytest.approx(0.05, abs=1e-6)
    assert v.max_rel == pytest.approx(0.05, abs=1e-6) and v.matched_ratio == 1.0


@pytest.mark.parametrize("out, status", [
    (torch.zeros(2, 3), "INCORRECT_SHAPE"),
    (torch.zeros(3, 2, dtype=torch.float64), "INCORRECT_DTYPE"),
    ([0.0] * 6, "INCORRECT_SHAPE"),
])
def test_shape_dtype_and_type(out, status) -> None:
    assert compare_tensor("y", out, torch.zeros(3, 2), 0.1, 0.1, 1.0).status == status


def test_empty_tensors_pass() -> None:
    assert compare_tensor("y", torch.zeros(0, 4), torch.zeros(0, 4), 0.1, 0.1, 1.0).passed


def test_low_precision_is_compared_in_float32() -> None:
    ref = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    assert compare_tensor("y", ref.clone(), ref, 0.0, 0.0, 1.0).passed
    out = torch.tensor([1.0, 2.5], dtype=torch.bfloat16)
    assert not compare_tensor("y", out, ref, 0.1, 0.1, 1.0).passed


def test_compare_outputs_first_failure_and_count() -> None:
    ok, bad = torch.ones(2), torch.zeros(2)
    assert compare_outputs(["a", "b"], [ok, ok], [ok, ok], 0.1, 0.1, 1.0).passed
    v = compare_outputs(["a", "b"], [ok, bad], [ok, ok], 0.1, 0.1, 1.0)
    assert not v.passed and "output 'b'" in v.message
    v = compare_outputs(["a", "b"], [ok], [ok, ok], 0.1, 0.1, 1.0)
    assert v.status == "INCORRECT_SHAPE" and "returned 1 output(s)" in v.message


def test_compare_outputs_reports_the_worst_stats() -> None:
    v = compare_outputs(["a", "b"], [torch.tensor([1.01]), torch.tensor([1.05])],
                        [torch.tensor([1.0]), torch.tensor([1.0])], 0.1, 0.1, 1.0)
    assert v.passed and v.max_abs == pytest.approx(0.05, abs=1e-6)


def test_default_matched_ratio() -> None:
    assert check.default_matched_ratio("moe_fp8_block_scale_ds_routing") == 0.95
    assert check.default_matched_ratio("rmsnorm_h4096") == 1.0


# -- mutated inputs ------------------------------------------------------------------------------


def test_untouched_inputs_are_not_mutated() -> None:
    x = torch.tensor([1.0, NAN, 3.0])  # NaN compares unequal to itself: still unchanged
    assert mutated_inputs(["x", "k"], [x, 5], [x.clone(), 5]) is None


def test_a_changed_element_names_the_input_and_count() -> None:
    x, w = torch.zeros(10), torch.ones(4)
    after = x.clone()
    after[3] = 1.0
    message = mutated_inputs(["x", "w"], [x, w], [after, w.clone()])
    assert message is not None
    assert "x (1 of 10 elements changed)" in message and "w (" not in message
    assert "read-only" in message


def test_a_replaced_input_is_mutated() -> None:
    x = torch.zeros(4)
    assert "x (replaced)" in mutated_inputs(["x"], [x], [torch.zeros(5)])
    assert "x (replaced)" in mutated_inputs(["x"], [x], [torch.zeros(4, dtype=torch.int32)])
    assert "x (replaced)" in mutated_inputs(["x"], [x], ["a string"])


def test_nan_written_into_an_input_is_mutation() -> None:
    x = torch.zeros(3)
    after = x.clone()
    after[0] = NAN
    message = mutated_inputs(["x"], [x], [after])
    assert message is not None and "1 of 3" in message


def test_scalar_inputs_are_not_compared() -> None:
    assert mutated_inputs(["s"], [math.pi], [0.0]) is None
