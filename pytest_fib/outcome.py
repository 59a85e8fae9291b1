"""Verdicts as values: every status the harness reports, and the outcome that carries one.

The runner returns an :class:`Outcome` (a pass) or raises one inside :class:`FibFailure`,
:class:`FibSkip` or :class:`CompiledOnly`; the nodes hand it to ``results.py``, which records it
and feeds every output. Nothing downstream reads a status back out of message text: the
self-test compares :class:`Status` members, traces write :attr:`Status.recorded_as`.

Imports nothing but the standard library and pytest, so any module may import it (no cycle).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, TypedDict

import pytest

# The statuses a FlashInfer-Trace evaluation may hold (flashinfer-bench 0.1.2, EvaluationStatus):
# only these are written as trace lines. The one list; traces.py reads it from here.
TRACE_STATUSES = frozenset({"PASSED", "INCORRECT_SHAPE", "INCORRECT_NUMERICAL", "INCORRECT_DTYPE",
                            "RUNTIME_ERROR", "COMPILE_ERROR", "TIMEOUT"})


class Status(enum.Enum):
    """A status the harness reports. Its value: (word, recorded as, meaning).

    *word* starts the item's failure message (users and tests grep for it); *recorded as* is the
    status the result record, the report and (when it is a FlashInfer-Trace status) the trace
    carry, or None when it is not the solution's verdict and nothing is recorded."""

    PASSED = ("PASSED", "PASSED", "the outputs match the reference")
    INCORRECT_NUMERICAL = ("INCORRECT_NUMERICAL", "INCORRECT_NUMERICAL",
                           "values outside the tolerance")
    INCORRECT_SHAPE = ("INCORRECT_SHAPE", "INCORRECT_SHAPE", "an output of the wrong shape")
    INCORRECT_DTYPE = ("INCORRECT_DTYPE", "INCORRECT_DTYPE", "an output of the wrong dtype")
    INPUT_MUTATED = ("INPUT_MUTATED", "INCORRECT_NUMERICAL", "the solution wrote to an input")
    RUNTIME_ERROR = ("RUNTIME_ERROR", "RUNTIME_ERROR", "the solution raised or its process died")
    COMPILE_ERROR = ("COMPILE_ERROR", "COMPILE_ERROR", "the solution did not build")
    TIMEOUT = ("TIMEOUT", "TIMEOUT", "the solution did not finish within --fib-timeout")
    COMPILED = ("COMPILED", "COMPILED", "built, but not runnable on this machine (skipped)")
    NOT_DISCRIMINATIVE = ("NOT_DISCRIMINATIVE", "PASSED",
                          "passed, but so would a null candidate (skipped)")
    HARNESS_TAMPERED = ("HARNESS_TAMPERED", "RUNTIME_ERROR",
                        "the solution replaced functions the harness checks with")
    TIMER_TAMPERED = ("TIMER_TAMPERED", "RUNTIME_ERROR",
                      "the solution replaced functions the timer relies on")
    TIMED_OUTPUT_WRONG = ("TIMED_OUTPUT_WRONG", "INCORRECT_NUMERICAL",
                          "the outputs of the timed calls do not match the reference")
    IMPLAUSIBLE_TIME = ("IMPLAUSIBLE_TIME", "INCORRECT_NUMERICAL",
                        "faster than the GPU's peak memory bandwidth allows")
    SANITIZER = ("SANITIZER", "RUNTIME_ERROR", "compute-sanitizer reported errors")
    SIDE_STREAM = ("SIDE_STREAM", None,
                   "a timing note: work ran on streams the timer does not see (passes)")
    INVALID_FILE = ("INVALID_FILE", None, "a dataset file the schema rejects")
    INVALID_WORKLOAD = ("INVALID_WORKLOAD", None, "a workload its own definition cannot run")
    REFERENCE_ERROR = ("REFERENCE_ERROR", None, "the definition's reference failed")
    REFERENCE_TIMEOUT = ("TIMEOUT", None, "the definition's reference did not finish in time")
    TIMING_UNREADABLE = ("TIMING_UNREADABLE", None, "no clock could read the timing trace")
    WORKER_ERROR = ("WORKER_ERROR", None, "a bug in pytest-fib's worker")
    RECORDED = ("RECORDED", None, "a failure an earlier run recorded (--fib-resume)")
    SELFTEST = ("SELFTEST", None, "an exploit not caught by the check meant for it")
    SKIPPED = ("SKIPPED", None, "skipped for a reason of the machine or the selection")
    OTHER = ("OTHER", None, "an error of no known kind")

    @property
    def word(self) -> str:
        return str(self.value[0])

    @property
    def recorded_as(self) -> str | None:
        return self.value[1]  # type: ignore[no-any-return]

    @property
    def meaning(self) -> str:
        return str(self.value[2])

    @property
    def in_trace(self) -> bool:
        """Written as a FlashInfer-Trace line when its item passes or fails."""
        return self.recorded_as in TRACE_STATUSES

    @classmethod
    def named(cls, name: str) -> Status:
        """The status a ``[selftest] expect`` names (KeyError: no such status)."""
        return cls[name]

    @classmethod
    def flagged(cls, notes: list[str]) -> list[Status]:
        """Statuses a passing item's notes raise (a note starts with ``WORD:``)."""
        return [s for s in cls if s.recorded_as is None
                and any(n.startswith(f"{s.word}:") for n in notes)]


class _Timing(TypedDict):
    definition: str
    op_type: str
    workload_uuid: str
    axes: dict[str, int]
    solution: str
    author: str
    language: str
    clock: str  # "cuda-cupti", "cuda-events", "host" ... (timing.py)
    device: str
    latency_ms: float  # median
    iqr_ms: float
    samples: int
    reference_latency_ms: float
    speedup: float  # reference / solution
    bytes: int  # inputs + outputs
    achieved_GBps: float
    notes: list[str]


class TimingInfo(_Timing, total=False):
    """A timing pass's summary: JSON-safe, pytest-benchmark's extra_info, the report's rows."""

    peak_bandwidth_GBps: float  # on a GPU whose peak is known
    pct_of_peak_bandwidth: float
    gpu: str
    gpu_device: str  # the GPU as CUDA_VISIBLE_DEVICES names it (an index or a UUID), else "0"
    gpu_uuid: str  # the GPU's own UUID, whatever the process's numbering
    # --fib-clock=flashinfer-bench: what flashinfer-bench 0.1.2's method read for the same calls
    judge_latency_ms: float
    judge_reference_latency_ms: float
    judge_speedup: float
    baseline: str  # --fib-baseline: the solution timed interleaved with this one
    speedup_vs_baseline: float
    speedup_vs_baseline_ci95: list[float]
    baseline_latency_ms: float


@dataclasses.dataclass
class Outcome:
    """What one run of an item came to: its status, the message the item shows, the log and
    metrics its record keeps, and (a timing pass) the timing summary and samples."""

    status: Status
    message: str = ""
    log: str = ""  # what the result record and trace keep (not always the message)
    # correctness metrics: max_abs, max_rel, matched_ratio (only those measured)
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    timing: TimingInfo | None = None  # a timing pass's summary
    samples_s: list[float] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # timing notes (e.g. SIDE_STREAM)


class FibFailure(AssertionError):
    """A failing verdict: shown as its message alone, without a traceback into the harness."""

    def __init__(self, outcome: Outcome | str) -> None:
        if isinstance(outcome, str):  # a message alone: a failure of no known kind
            outcome = Outcome(Status.OTHER, outcome)
        super().__init__(outcome.message)
        self.outcome = outcome

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.outcome,))


class FibSkip(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """A skip that still carries an outcome (NOT_DISCRIMINATIVE: the pass is recorded)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message, allow_module_level=False)
        self.outcome = outcome


class CompiledOnly(Exception):
    """Built (compile-checked) but not runnable on this machine."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


def fail(status: Status, message: str, log: str | None = None,
         **metrics: float) -> FibFailure:
    """The exception for a failing verdict (``raise fail(...)``); the log defaults to none."""
    return FibFailure(Outcome(status, message, "" if log is None else log, dict(metrics)))


def of(exc: BaseException) -> Status:
    """The status an exception carries (a plain skip: SKIPPED; anything else: OTHER)."""
    outcome = getattr(exc, "outcome", None)
    if isinstance(outcome, Outcome):
        return outcome.status
    if isinstance(exc, pytest.skip.Exception):
        return Status.SKIPPED
    return Status.OTHER
