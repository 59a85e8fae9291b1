"""Verdicts as values (issue 17): statuses, outcomes and the exceptions that carry them."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from pytest_fib import outcome
from pytest_fib._toml import tomllib
from pytest_fib.outcome import FibFailure, FibSkip, Outcome, Status


def test_every_status_has_a_meaning_and_a_word_in_capitals() -> None:
    for status in Status:
        assert status.meaning and status.word == status.word.upper(), status


def test_checks_that_are_not_trace_statuses_are_recorded_as_one() -> None:
    assert Status.INPUT_MUTATED.recorded_as == "INCORRECT_NUMERICAL"
    assert Status.TIMED_OUTPUT_WRONG.recorded_as == "INCORRECT_NUMERICAL"
    assert Status.TIMER_TAMPERED.recorded_as == "RUNTIME_ERROR"
    assert Status.REFERENCE_ERROR.recorded_as is None  # the dataset's fault: nothing recorded
    assert Status.REFERENCE_TIMEOUT.word == "TIMEOUT" and not Status.REFERENCE_TIMEOUT.in_trace


def test_a_failure_carries_its_outcome_through_pickling() -> None:
    e = outcome.fail(Status.INPUT_MUTATED, "INPUT_MUTATED (trial 1 of 3): x", log="x",
                     max_abs=1.0)
    again = pickle.loads(pickle.dumps(e))
    assert str(again) == "INPUT_MUTATED (trial 1 of 3): x"
    assert again.outcome == e.outcome and again.outcome.metrics == {"max_abs": 1.0}
    assert outcome.of(again) is Status.INPUT_MUTATED


def test_status_of_plain_exceptions() -> None:
    assert outcome.of(FibFailure("no status")) is Status.OTHER
    assert outcome.of(FibSkip(Outcome(Status.NOT_DISCRIMINATIVE, "n"))) is Status.NOT_DISCRIMINATIVE
    with pytest.raises(pytest.skip.Exception) as info:
        pytest.skip("a plain skip")
    assert outcome.of(info.value) is Status.SKIPPED


def test_timing_notes_flag_their_status() -> None:
    assert Status.flagged(["SIDE_STREAM: work ran on 1 stream(s) besides"]) == [Status.SIDE_STREAM]
    assert Status.flagged(["CUPTI trace unusable"]) == []


def test_every_selftest_expectation_names_a_status() -> None:
    corpus = Path(outcome.__file__).parent / "selftest"
    expected = [tomllib.loads(p.read_text()).get("selftest", {}).get("expect")
                for p in corpus.rglob("config.toml")]
    assert [e for e in expected if e]
    for name in filter(None, expected):
        Status.named(name)  # KeyError names an expectation the harness cannot report
