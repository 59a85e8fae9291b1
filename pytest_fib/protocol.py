"""The worker protocol: what the controller asks a worker (``Request``) and what it answers
(``Reply``), one pickled dict each way over a pipe (``pool.py``, ``worker.py``).

TypedDicts, not dataclasses: the messages stay plain dicts, so pickling and the zygote's relay are
unchanged, and mypy checks every key that is read or written. Tensors travel inside as
``transfer.py`` packs them (``Any`` here).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Op = Literal["correctness", "timing", "reference", "time_reference", "ping"]
ReplyStatus = Literal["ok", "build_error", "compiled", "unavailable", "needs_package", "needs_gpu",
                      "invalid", "runtime_error", "reference_error", "worker_error",
                      "lost"]  # lost: the zygote's word for a child that died mid-call


class Where(TypedDict, total=False):
    """The files a request's JSON came from (for messages)."""

    definition: str
    workload: str  # path:line
    solution: str
    baseline: str


class _RequestOp(TypedDict):
    op: Op


class Request(_RequestOp, total=False):
    """One call into a worker. ``op`` picks ``Worker.op_<op>``; the rest depends on it."""

    definition: dict[str, Any]  # Definition JSON
    workload: dict[str, Any]  # Workload JSON
    solution: dict[str, Any]  # Solution JSON, with the calling convention it is called with
    baseline: dict[str, Any]  # timing: Solution JSON timed interleaved with it
    root: str  # dataset root (safetensors blobs)
    where: Where
    device: str
    needs_gpu: bool
    seed: int  # reference: the one input set
    seeds: list[int]  # correctness: one per trial; timing: the rotated input sets
    transfer: Literal["ipc", "host"]  # how outputs come back (transfer.py)
    warmup: int
    iterations: int
    recheck: list[int]  # timing: input sets whose last timed output is sent back
    draws: dict[str, int]  # sampling: sampling.DrawPlan as a dict
    cycles: list[int]  # reference: perturbation cycles the timed inputs went through
    batch: list[tuple[int, list[int]]]  # reference: several (seed, cycles) in one request
    clock: str  # timing: "auto" or "cuda-events"
    judge: bool  # timing: also time it as flashinfer-bench 0.1.2 does (--fib-clock)


class Trial(TypedDict):
    """One correctness trial's outputs and whether the solution wrote to its inputs."""

    outputs: list[Any]
    mutated: str | None
    returned: bool


class Checked(TypedDict):
    """A timed call's outputs, sent back to be checked against the reference."""

    outputs: list[Any]
    mutated: str | None


class _ReplyStatus(TypedDict):
    status: ReplyStatus


class Reply(_ReplyStatus, total=False):
    """A worker's answer. ``status`` says which other keys are there."""

    message: str
    traceback: str
    fatal: bool  # the worker exits after answering (tampering, a CUDA error)
    log: str  # the worker's output (runtime errors), the build log (build errors)
    errors: str  # build_error: the compiler's error lines
    build_seconds: float  # compiled
    trials: list[Trial]  # correctness
    draws: Any  # correctness of a sampler / reference: the samples drawn
    outputs: list[Any]  # reference
    batch: list[list[Any]]  # reference with a batch: the outputs for each (seed, cycles)
    tampered: list[str]  # guarded functions the solution replaced
    measurement: dict[str, Any]  # timing.Measurement.to_json()
    parts: int  # timing: solutions timed interleaved (2 with a baseline)
    judge_ms: float  # timing (--fib-clock=flashinfer-bench): what its time_runnable read
    judge_error: str  # why it could not read one
    checked: dict[int, Checked]  # timing: input set -> last timed output
    diagnostics: str  # a sanitizer or ncu report
    code: int  # lost: the child's exit status
    pid: int  # ping
    execd: bool  # ping
