"""Sampling verdicts: per-sample checks and the distribution check (pytest_fib/sampling.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from pytest_fib import sampling  # noqa: E402

NAMES = ["probs", "top_k", "top_p"]


def inputs(k: int = 2, p: float = 1.0) -> list:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    return [probs, torch.tensor([k], dtype=torch.int32), torch.tensor([p])]


def test_top_k_mask_keeps_ties_at_the_kth() -> None:
    probs = torch.tensor([[0.4, 0.2, 0.2, 0.2]])
    mask = sampling.valid_mask("top_k_sampling", NAMES, [probs, torch.tensor([2]),
                                                         torch.tensor([1.0])])
    assert mask.tolist() == [[True, True, True, True]]


def test_samples_outside_the_vocabulary_or_the_filter_fail() -> None:
    name = "top_k_sampling_from_probs"
    assert sampling.check_samples(name, NAMES, inputs(), torch.tensor([1])).passed
    bad = sampling.check_samples(name, NAMES, inputs(), torch.tensor([3]))
    assert not bad.passed and "token 3" in bad.message and "excludes" in bad.message
    out = sampling.check_samples(name, NAMES, inputs(), torch.tensor([4]))
    assert not out.passed and "outside the vocabulary" in out.message


def test_top_p_nucleus_has_flashinfer_bench_slack() -> None:
    mask = sampling.valid_mask("top_p_sampling", NAMES, inputs(p=0.78))
    assert mask.tolist() == [[True, True, False, False]]  # 0.8 <= 0.78 + 0.05


def test_frequencies_map_repeated_rows_back() -> None:
    draws = [torch.tensor([0, 1, 0, 1]), torch.tensor([0, 2, 0, 2])]  # batch 2 repeated twice
    freq = sampling.frequencies(draws, batch=2, vocab=3)
    assert freq.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]


def test_distribution_threshold() -> None:
    expected = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    assert sampling.judge_distribution(torch.tensor([[0.6, 0.4]], dtype=torch.float64),
                                       expected, 100).passed
    far = sampling.judge_distribution(torch.tensor([[1.0, 0.0]], dtype=torch.float64),
                                      expected, 100)
    assert not far.passed and "0.500 > 0.2" in far.message


def test_exact_expected_only_without_top_p() -> None:
    assert sampling.exact_expected({"op_type": "sampling", "name": "top_k_sampling_v8"})
    assert not sampling.exact_expected({"op_type": "sampling", "name": "top_k_top_p_v8"})
    assert not sampling.exact_expected({"op_type": "multinomial", "name": "m"})


def test_draw_plan_repeats_the_batch_up_to_the_row_budget() -> None:
    plan = sampling.DrawPlan.for_inputs(batch=4, vocab=128, device="cpu", exact=True)
    assert plan.repeat == 2500 and plan.repeat * plan.calls >= sampling.DRAWS["cpu", True]


def test_a_support_too_large_for_the_draws_is_not_judged_and_says_so() -> None:
    support = 20_000
    expected = torch.full((1, support), 1 / support, dtype=torch.float64)
    observed = torch.zeros_like(expected)
    observed[0, 0] = 1.0  # would be far off, but 4000 draws cannot tell a correct sampler apart
    v = sampling.judge_distribution(observed, expected, draws=4000, exact=True)
    assert v.passed and "not judged" in v.message and "20000 possible tokens" in v.message
    v = sampling.judge_distribution(observed[:, :100] * 0 + 1 / 100,
                                    expected[:, :100] * 0 + torch.eye(1, 100, dtype=torch.float64),
                                    draws=4000, exact=True)
    assert not v.passed
