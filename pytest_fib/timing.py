"""Device time of one call, as the kernel itself sees it. No pytest here; runs in any process.

Method on a GPU (docs/timing.md has the measured error against Nsight Compute):

1. Warm up (build, autotune, first-launch costs stay out).
2. For each timed iteration: the harness's preparation (fresh poison, one perturbed input element),
   a write of an L2-sized buffer (flush: the kernel starts with a cold L2, as in a model where
   other layers ran in between), a tiny opening marker kernel, the call, a device-wide synchronize
   (so work the call left on *any* stream finishes), a closing marker.
3. CUPTI activity records (through torch.profiler) give every kernel's and memcpy's device start and
   end. The iteration's time is the time the device was busy with the activities between the
   opening and the closing marker (the union of their intervals): kernels on side streams count
   (once, where they overlap); the preparation, the flush and host launch gaps do not.
4. That arithmetic runs in the controller (``resolve``), on the raw records the worker sends: the
   process that ran solution code only collects records, so replacing a function that computes
   a time there changes nothing (and the worker's guard still sees the attempt, issue 13).

Host-side CUDA events around each launch (flashinfer-bench, do_bench) measure launch latency at
small sizes (20x too slow at batch 1, issue #3); the span of device activity does not.

Without a GPU the host clock times each call (``perf_counter``), labelled ``cpu`` everywhere.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

MARKER_CYCLES = 1000  # torch.cuda._sleep: a ~1 us kernel that separates iterations in the trace
# The marker kernel's exact name in a CUPTI trace (learned once per process by marker_name();
# this is what torch 2.x reports). Matched exactly, never as a substring: an honest kernel named
# spin_* must neither count as a marker nor have its own time dropped (issue 13).
MARKER_KERNEL = "void at::native::(anonymous namespace)::spin_kernel(long)"
_LEARNED: list[str] = []


@dataclasses.dataclass
class Measurement:
    samples_s: list[float]  # one per timed iteration, seconds
    clock: str  # "cuda-cupti", "cuda-events" or "cpu"
    warmup: int
    flush_bytes: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)
    # CUPTI only: the timed run's raw device activity records [start_us, end_us, name, stream],
    # the marker kernel's exact name and the number of iterations. resolve() turns them into
    # samples_s in the controller; samples_s stays empty until then.
    records: list[list[Any]] | None = None
    marker: str = ""
    iterations: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def l2_flush_bytes(device: Any) -> int:
    """Twice the L2 size: enough to evict anything the previous iteration left there."""
    import torch

    props = torch.cuda.get_device_properties(device)
    l2 = int(getattr(props, "L2_cache_size", 0) or 50 * 2**20)
    return max(2 * l2, 64 * 2**20)


def peak_bandwidth(device: Any) -> float | None:
    """Theoretical DRAM bandwidth in bytes/s from the device's clock and bus width, if known."""
    import torch

    props = torch.cuda.get_device_properties(device)
    clock_khz = getattr(props, "memory_clock_rate", 0)
    bus_bits = getattr(props, "memory_bus_width", 0)
    if not clock_khz or not bus_bits:
        return None
    return 2.0 * clock_khz * 1e3 * bus_bits / 8  # DDR: two transfers per clock


def measure(call: Callable[[int], Any], *, device: str, warmup: int, iterations: int,
            before: Callable[[int], Any] | None = None,
            after: Callable[[int], Any] | None = None, clock: str = "auto") -> Measurement:
    """Time ``call(i)`` for i in range(iterations) (after ``call(i)`` for i in range(warmup)); the
    caller maps i to an input set, rotating them so consecutive calls never share inputs.

    ``before(i)`` runs before timed iteration i, ``after(i)`` once it is over (device work and
    closing marker done), both outside the measured span: the worker uses them to re-poison
    outputs and perturb inputs, and to snapshot the outputs it will have re-checked (so work a
    solution finishes later, from a thread of its own, is not in what is checked)."""
    prep = before or (lambda i: None)
    post = after or (lambda i: None)
    if device.startswith("cuda"):
        try:
            return _measure_cupti(call, prep, post, warmup, iterations)
        except _ProfilerUnavailable as e:
            m = _measure_events(call, prep, post, warmup, iterations)
            m.notes.append(f"CUPTI unavailable ({e}); CUDA events around each call instead")
            return m
    return _measure_host(call, prep, post, warmup, iterations)


class _ProfilerUnavailable(Exception):
    pass


def _measure_host(call: Callable[[int], Any], prep: Callable[[int], Any],
                  post: Callable[[int], Any], warmup: int, iterations: int) -> Measurement:
    for i in range(warmup):
        call(i)
    samples = []
    for i in range(iterations):
        prep(i)
        start = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - start)
        post(i)
    return Measurement(samples, "cpu", warmup)


def _warm_up(call: Callable[[int], Any], warmup: int) -> Any:
    """Warm-up calls outside any measurement, then the L2 flush buffer the iterations write."""
    import torch

    flush = torch.empty(l2_flush_bytes(torch.cuda.current_device()) // 4, dtype=torch.int32,
                        device="cuda")
    for i in range(warmup):
        call(i)
    torch.cuda.synchronize()
    return flush


def _measure_events(call: Callable[[int], Any], prep: Callable[[int], Any],
                    post: Callable[[int], Any], warmup: int, iterations: int) -> Measurement:
    import torch

    flush = _warm_up(call, warmup)
    flush_bytes = flush.numel() * 4
    samples = []
    for i in range(iterations):
        prep(i)
        flush.zero_()
        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call,unused-ignore]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call,unused-ignore]
        start.record()
        call(i)
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end) / 1e3)
        post(i)
    return Measurement(samples, "cuda-events", warmup, flush_bytes)


def _device_activities(prof: Any) -> list[tuple[float, float, str, int]]:
    """(start_us, end_us, name, stream) of every device-side activity (kernels, memcpy, memset).
    torch.profiler keeps a device event's stream id in ``device_resource_id``."""
    from torch.autograd import DeviceType  # type: ignore[attr-defined,unused-ignore]

    out = []
    for evt in prof.events():
        if evt.device_type == DeviceType.CUDA and not getattr(evt, "is_user_annotation", False):
            out.append((evt.time_range.start, evt.time_range.end, evt.name,
                        int(getattr(evt, "device_resource_id", 0) or 0)))
    out.sort()
    return out


def _measure_cupti(call: Callable[[int], Any], prep: Callable[[int], Any],
                   post: Callable[[int], Any], warmup: int, iterations: int) -> Measurement:
    import torch
    from torch.profiler import ProfilerActivity, profile

    flush = _warm_up(call, warmup)
    flush_bytes = flush.numel() * 4
    try:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for i in range(iterations):
                prep(i)
                flush.zero_()
                torch.cuda._sleep(MARKER_CYCLES)  # type: ignore[attr-defined,no-untyped-call,unused-ignore]  # opens iteration i
                call(i)
                torch.cuda.synchronize()  # every stream's work of this call is done...
                torch.cuda._sleep(MARKER_CYCLES)  # type: ignore[attr-defined,no-untyped-call,unused-ignore]  # ...before this
                torch.cuda.synchronize()
                post(i)  # after the closing marker: outside every iteration's span
    except RuntimeError as e:
        raise _ProfilerUnavailable(str(e)) from None
    records = [list(a) for a in _device_activities(prof)]
    return Measurement([], "cuda-cupti", warmup, flush_bytes, records=records,
                       marker=marker_name(), iterations=iterations)


class Unresolvable(Exception):
    """The records of a CUPTI run cannot be split into iterations (the message says why)."""


def resolve(m: Measurement, parts: int = 1) -> list[Measurement]:
    """In the controller: the samples of a measurement, split among the ``parts`` solutions that
    were timed interleaved (see interleave()). A CUPTI measurement is computed here from its raw
    records; the others already hold their samples. Raises Unresolvable when the records do not
    hold two markers per iteration."""
    per_iteration_streams = [1] * (m.iterations or len(m.samples_s))
    if m.records is not None:
        acts = [(float(a[0]), float(a[1]), str(a[2]), int(a[3])) for a in m.records]
        split = _spans(acts, m.iterations, m.marker or MARKER_KERNEL)
        if split is None:
            found = sum(1 for a in acts if a[2] == (m.marker or MARKER_KERNEL))
            raise Unresolvable(f"the trace held {found} marker kernels for {m.iterations} "
                               "iterations (two expected per iteration)")
        samples, per_iteration_streams = split
    else:
        samples = list(m.samples_s)
    out = []
    for j in range(parts):
        mine = Measurement(samples[j::parts], m.clock, m.warmup // parts, m.flush_bytes,
                           list(m.notes))
        streams = max(per_iteration_streams[j::parts], default=1)
        if streams > 1:
            mine.notes.append(f"SIDE_STREAM: work ran on {streams - 1} stream(s) besides the "
                              "caller's; all of it is counted")
        out.append(mine)
    return out


def marker_name() -> str:
    """The exact name the marker kernel has in this process's traces: one ``_sleep`` profiled
    alone (at the first measurement, outside any timed span)."""
    if not _LEARNED:
        import torch
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            torch.cuda._sleep(10)  # type: ignore[attr-defined,no-untyped-call,unused-ignore]
            torch.cuda.synchronize()
        names = {a[2] for a in _device_activities(prof)}
        _LEARNED.append(names.pop() if len(names) == 1 else MARKER_KERNEL)
    return _LEARNED[0]


def spans_between_markers(acts: list[tuple[float, float, str, int]], iterations: int,
                          marker: str = MARKER_KERNEL) -> tuple[list[float], int] | None:
    """From a device trace sorted by start time, the device time of each iteration's work:
    everything that starts after an opening marker ends and before its closing marker starts (the
    closing marker is launched after a device-wide synchronize, so side-stream work of the call is
    inside; the flush and the harness's own preparation lie outside). Returns the busy times in
    seconds and the most streams one iteration involved, the calling stream (the markers') always
    counted: work moved entirely to a side stream shows as 2. None when the trace does not hold
    2 markers per iteration."""
    split = _spans(acts, iterations, marker)
    return None if split is None else (split[0], max(split[1], default=1))


def _spans(acts: list[tuple[float, float, str, int]], iterations: int,
           marker: str) -> tuple[list[float], list[int]] | None:
    """spans_between_markers, with the number of streams of each iteration."""
    markers = [a for a in acts if a[2] == marker]
    if len(markers) != 2 * iterations:
        return None
    samples, streams = [], []
    for n in range(iterations):
        opened, closed = markers[2 * n][1], markers[2 * n + 1][0]
        work = [a for a in acts if opened <= a[0] < closed and a[2] != marker]
        samples.append(busy_time(work) / 1e6)
        streams.append(len({a[3] for a in work} | {markers[2 * n][3]}))
    return samples, streams


def busy_time(work: list[tuple[float, float, str, int]]) -> float:
    """Microseconds the device spent on this work: the union of its activity intervals, so
    overlapping streams count once and idle gaps between launches do not count at all (under the
    profiler those gaps are inflated by CUPTI's own per-launch overhead, and a CUDA graph would
    remove them in production)."""
    total, end = 0.0, float("-inf")
    for start, stop, *_ in sorted(work):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def quartiles(ordered: list[float]) -> tuple[float, float]:
    """(Q1, Q3) exactly as pytest-benchmark's ``Stats`` computes them (Wikipedia's method 2 for an
    even count, method 3 for an odd one), so ``extra_info.iqr_ms`` and its ``stats.iqr`` agree
    for the same samples (issue 18: one IQR definition)."""
    n = len(ordered)
    if n == 1:
        return ordered[0], ordered[0]
    if n % 2 == 0:
        return statistics.median(ordered[:n // 2]), statistics.median(ordered[n // 2:])
    k, q = n // 4, n % 4
    if q == 1:
        return (0.25 * ordered[k - 1] + 0.75 * ordered[k],
                0.75 * ordered[3 * k] + 0.25 * ordered[3 * k + 1])
    return (0.75 * ordered[k] + 0.25 * ordered[k + 1],
            0.25 * ordered[3 * k + 1] + 0.75 * ordered[3 * k + 2])


def summarize(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    n = len(ordered)
    q1, q3 = quartiles(ordered)
    return {"median_ms": statistics.median(ordered) * 1e3, "min_ms": ordered[0] * 1e3,
            "iqr_ms": (q3 - q1) * 1e3, "mean_ms": statistics.fmean(ordered) * 1e3, "n": n}


def ratio_ci(a_s: list[float], b_s: list[float], resamples: int = 2000,
             seed: int = 0) -> tuple[float, float, float]:
    """Median(a)/median(b) with a 95% bootstrap interval (for interleaved baseline timings)."""
    import random

    rng = random.Random(seed)
    tiny = 1e-12  # a sample of 0 (no device work seen) must not divide by zero
    point = statistics.median(a_s) / max(statistics.median(b_s), tiny)
    boots = []
    for _ in range(resamples):
        ra = [rng.choice(a_s) for _ in a_s]
        rb = [rng.choice(b_s) for _ in b_s]
        boots.append(statistics.median(ra) / max(statistics.median(rb), tiny))
    boots.sort()
    return point, boots[int(0.025 * resamples)], boots[int(0.975 * resamples) - 1]


def interleave(*hooks: list[Callable[[int], Any]]) -> tuple[Callable[[int], Any], ...]:
    """For each list of per-solution hooks (calls, befores, afters), one hook that alternates the
    solutions: A B A B ... so drift (clocks, temperature, neighbours) hits all alike, and their
    ratio gets a meaningful interval. Iteration i runs solution i % n on its own iteration
    i // n."""
    def alternate(fns: list[Callable[[int], Any]]) -> Callable[[int], Any]:
        n = len(fns)
        return lambda i: fns[i % n](i // n)

    return tuple(alternate(fns) for fns in hooks)

