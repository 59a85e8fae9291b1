"""timing.py: splitting a device trace into per-iteration spans, the host-clock path, and the
statistics around them. Synthetic traces: (start_us, end_us, name, stream)."""

from __future__ import annotations

import pytest

from pytest_fib import timing
from pytest_fib.timing import ratio_ci, spans_between_markers

SPIN = "void at::native::(anonymous namespace)::spin_kernel(long)"  # torch.cuda._sleep


def marker(start: float) -> tuple[float, float, str, int]:
    return (start, start + 1.0, SPIN, 7)


def trace(*iterations: list[tuple[float, float, str, int]],
          gap: float = 1000.0) -> list[tuple[float, float, str, int]]:
    """Per iteration: flush, opening marker, the work (times relative to the marker's end),
    closing marker. Iterations start ``gap`` us apart."""
    acts = []
    for n, work in enumerate(iterations):
        t0 = n * gap
        acts.append((t0, t0 + 50.0, "flush_zero_", 7))
        acts.append(marker(t0 + 60.0))
        opened = t0 + 61.0
        acts += [(opened + s, opened + e, name, stream) for s, e, name, stream in work]
        last = max((opened + e for _, e, _, _ in work), default=opened)
        acts.append(marker(last + 5.0))
    return sorted(acts)


def test_one_kernel_per_iteration() -> None:
    acts = trace([(2.0, 12.0, "k", 7)], [(3.0, 23.0, "k", 7)])
    samples, streams = spans_between_markers(acts, 2)
    assert samples == pytest.approx([10e-6, 20e-6])
    assert streams == 1


def test_idle_gaps_between_launches_do_not_count() -> None:
    """Device busy time: the union of the iteration's activities; the flush is outside."""
    acts = trace([(1.0, 5.0, "a", 7), (8.0, 9.0, "memcpy", 7), (10.0, 30.0, "b", 7)])
    samples, _ = spans_between_markers(acts, 1)
    assert samples == pytest.approx([25e-6])  # 4 + 1 + 20


def test_side_stream_overlap_counts_once_and_is_reported() -> None:
    """Work on a side stream that overlaps the main stream's counts once; its tail counts."""
    acts = trace([(0.0, 10.0, "main", 7), (4.0, 25.0, "side", 9), (26.0, 28.0, "tail", 7)],
                 [(0.0, 10.0, "main", 7)])
    samples, streams = spans_between_markers(acts, 2)
    assert samples == pytest.approx([27e-6, 10e-6])  # [0, 25] and [26, 28]; then [0, 10]
    assert streams == 2


def test_work_moved_entirely_to_a_side_stream_is_reported() -> None:
    """The calling stream (the markers') sees nothing; the side stream's work is timed."""
    samples, streams = spans_between_markers(trace([(0.0, 15.0, "side", 9)]), 1)
    assert samples == pytest.approx([15e-6])
    assert streams == 2


@pytest.mark.parametrize("work, busy", [
    ([], 0.0),
    ([(0.0, 10.0), (2.0, 3.0)], 10.0),  # contained
    ([(0.0, 10.0), (0.0, 10.0)], 10.0),  # identical, e.g. two streams
    ([(20.0, 30.0), (0.0, 10.0)], 20.0),  # unsorted
    ([(0.0, 10.0), (10.0, 15.0)], 15.0),  # back to back
])
def test_busy_time_is_the_union_of_intervals(work, busy) -> None:
    assert timing.busy_time([(s, e, "k", 7) for s, e in work]) == pytest.approx(busy)


def test_iteration_without_work_is_zero() -> None:
    samples, _ = spans_between_markers(trace([], [(0.0, 4.0, "k", 7)]), 2)
    assert samples == pytest.approx([0.0, 4e-6])


@pytest.mark.parametrize("iterations", [1, 3])
def test_wrong_marker_count_is_none(iterations: int) -> None:
    assert spans_between_markers(trace([(0.0, 1.0, "k", 7)], [(0.0, 1.0, "k", 7)]),
                                 iterations) is None


def test_summarize() -> None:
    s = timing.summarize([0.004, 0.001, 0.003, 0.002])
    assert s["n"] == 4 and s["min_ms"] == pytest.approx(1.0)
    assert s["median_ms"] == pytest.approx(2.5) and s["mean_ms"] == pytest.approx(2.5)


def test_host_clock_calls_and_preparation_order() -> None:
    """Warm-up calls first (not prepared, not timed), then prepare + call per timed iteration."""
    log: list[str] = []
    m = timing.measure(lambda i: log.append(f"call{i}"), device="cpu", warmup=2, iterations=3,
                       before=lambda i: log.append(f"before{i}"))
    assert log == ["call0", "call1", "before0", "call0", "before1", "call1", "before2", "call2"]
    assert m.clock == "cpu" and len(m.samples_s) == 3 and m.warmup == 2
    assert all(s >= 0 for s in m.samples_s)


def test_interleave_alternates_solutions_on_their_own_iterations() -> None:
    log: list[str] = []
    call, before = timing.interleave(
        [lambda i: log.append(f"A{i}"), lambda i: log.append(f"B{i}")],
        [lambda i: log.append(f"a{i}"), lambda i: log.append(f"b{i}")])
    for i in range(4):
        before(i)
        call(i)
    assert log == ["a0", "A0", "b0", "B0", "a1", "A1", "b1", "B1"]
    host = timing.Measurement([1, 2, 3, 4, 5, 6], "cpu", 4)
    assert [m.samples_s for m in timing.resolve(host, 2)] == [[1, 3, 5], [2, 4, 6]]


def raw(acts: list[tuple[float, float, str, int]], iterations: int) -> timing.Measurement:
    """A CUPTI measurement as the worker sends it: records only, no samples."""
    return timing.Measurement([], "cuda-cupti", 2, records=[list(a) for a in acts], marker=SPIN,
                              iterations=iterations)


def test_the_controller_computes_times_from_raw_records_and_splits_interleaved_ones() -> None:
    """Issue 13: the worker (which ran solution code) sends records; resolve() does the
    arithmetic. Interleaved A B A B: each solution gets its own iterations and side-stream note."""
    acts = trace([(0.0, 10.0, "a", 7)], [(0.0, 4.0, "b", 7), (0.0, 6.0, "b_side", 9)],
                 [(0.0, 12.0, "a", 7)], [(0.0, 4.0, "b", 7)])
    mine, base = timing.resolve(raw(acts, 4), 2)
    assert mine.samples_s == pytest.approx([10e-6, 12e-6])
    assert base.samples_s == pytest.approx([6e-6, 4e-6])
    assert mine.records is None and mine.clock == "cuda-cupti" and mine.warmup == 1
    assert not mine.notes and base.notes and base.notes[0].startswith("SIDE_STREAM")


def test_records_without_two_markers_per_iteration_are_unresolvable() -> None:
    """A solution that launches the marker kernel itself: said, never guessed."""
    acts = trace([(0.0, 3.0, SPIN, 7)])
    with pytest.raises(timing.Unresolvable, match="3 marker kernels for 1 iterations"):
        timing.resolve(raw(acts, 1))


def test_an_unresolvable_trace_is_timed_again_with_events_and_says_so() -> None:
    from pytest_fib.runner import resolved

    events = timing.Measurement([5e-6], "cuda-events", 2).to_json()
    answers = [{"measurement": raw(trace([(0.0, 3.0, SPIN, 7)]), 1).to_json()},
               {"measurement": events}]
    clocks: list[str] = []
    req: dict[str, str] = {}

    def send() -> dict[str, object]:
        clocks.append(req["clock"])
        return answers.pop(0)

    _, (m,) = resolved(req, send)
    assert clocks == ["auto", "cuda-events"]
    assert m.clock == "cuda-events" and m.samples_s == [5e-6]
    assert "CUPTI trace unusable (the trace held 3 marker kernels" in m.notes[0]


def test_ratio_ci_point_and_interval() -> None:
    a = [2.0, 2.1, 1.9, 2.0, 2.2, 1.8, 2.0]
    b = [1.0, 1.05, 0.95, 1.0, 1.1, 0.9, 1.0]
    point, lo, hi = ratio_ci(a, b)
    assert point == pytest.approx(2.0)
    assert lo <= point <= hi
    assert 1.5 < lo and hi < 2.5
    assert ratio_ci(a, b) == (point, lo, hi)  # seeded: reproducible


def test_ratio_ci_constant_samples_is_a_point() -> None:
    assert ratio_ci([3.0] * 5, [1.5] * 5) == (2.0, 2.0, 2.0)


def test_ratio_ci_survives_zero_samples() -> None:
    ratio_ci([1.0, 1.0, 1.0], [0.0, 1.0, 1.0])


def test_a_solution_kernel_named_spin_is_neither_a_marker_nor_dropped() -> None:
    """Issue 13: markers were any kernel whose name held 'spin'; an honest spin_scale_kernel made
    the markers miscount and the item fell back to CUDA events (5x slower readings)."""
    acts = trace([(0.0, 3.0, "spin_scale_kernel", 7)], [(0.0, 2.0, "spin_scale_kernel", 7)])
    samples, _ = spans_between_markers(acts, 2)
    assert [round(s * 1e6, 3) for s in samples] == [3.0, 2.0]


def test_event_timed_items_are_named_and_kept_out_of_the_speedups() -> None:
    """Issue 13: a CUPTI failure switched clocks with only a note; now the summary names the
    items and their (launch-inflated) speedups stay out of the means."""
    from types import SimpleNamespace

    from pytest_fib import report
    from pytest_fib.outcome import Outcome, Status
    from pytest_fib.results import Results

    results = Results()

    def rec(key: str, uuid: str, clock: str, speedup: float) -> None:
        case = SimpleNamespace(key=key, definition=SimpleNamespace(name="d"),
                               solution=SimpleNamespace(name="s"),
                               workload=SimpleNamespace(uuid=uuid))
        results.record(case, Outcome(Status.PASSED, timing={  # type: ignore[arg-type]
            "clock": clock, "speedup": speedup, "latency_ms": 1.0}))

    rec("a", "aaaaaaaa-1", "cuda-cupti", 2.0)
    rec("b", "bbbbbbbb-1", "cuda-events", 0.1)
    fib = SimpleNamespace(results=results)
    assert report.events_timed(fib) == ["d::s[bbbbbbbb]"]
    (row,) = report.solution_rows(fib)
    assert row["speedup_geomean"] == pytest.approx(2.0)
