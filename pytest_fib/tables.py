"""Tables a person reads at the end of a session (issue 18): widths from the data, times in the unit
that fits with 3 significant digits, and the contest's score per definition.

The score. The contest scores a solution on a definition by the arithmetic mean of its per-workload
speedups (reference time / solution time). flashinfer-bench 0.1.2 itself has no aggregate over
workloads; what it has gives a workload that did not pass speedup 0: ``Performance.speedup_factor``
defaults to 0.0, a failed evaluation carries no performance, and ``TraceSet.get_best_trace`` ranks
a trace without an evaluation at 0. So here a workload that failed, was only compiled, or was not
timed counts 0 in the mean, and is listed; the mean over timed workloads alone is shown beside it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import Record


def fmt_time(ms: float | None) -> str:
    """A time in the unit that fits, 3 significant digits: 1.76 µs, 14.1 ms, 2.35 s."""
    if ms is None:
        return "-"
    for unit, scale in (("ns", 1e6), ("µs", 1e3), ("ms", 1.0)):
        value = float(f"{ms * scale:.3g}")
        if abs(value) < 1000:
            return f"{_sig3(value)} {unit}"
    return f"{_sig3(float(f'{ms / 1e3:.3g}'))} s"


def _sig3(value: float) -> str:
    text = format(value, "#.3g")
    return text.rstrip(".") if "e" not in text else format(value, ".3g")


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(header: Sequence[str], rows: Sequence[Sequence[str]],
           right: Sequence[bool] | None = None) -> list[str]:
    """Plain text columns as wide as their widest cell (names are never cut)."""
    right = right or [False] * len(header)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if r else str(c).ljust(w)
                         for c, w, r in zip(cells, widths, right, strict=True)).rstrip()
    return [line(header), *(line(r) for r in rows)]


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in r) + " |" for r in rows)]


def workload_label(rec: Record) -> str:
    from .cases import workload_id

    try:
        return str(workload_id(rec.case.workload))
    except (AttributeError, KeyError, TypeError):  # a record without axes: its short uuid
        return str(rec.case.workload.uuid[:8])


def score(recs: list[Record]) -> tuple[float | None, list[tuple[str, str]]]:
    """(The contest's score: mean speedup over all these workloads, a workload without a passed
    timing counting 0; None when none was timed and none failed: nothing to score, e.g. under
    ``-m correctness``), [(workload, why it counts 0)]."""
    values: list[float] = []
    zeros: list[tuple[str, str]] = []
    for rec in recs:
        t = rec.timing
        status = rec.status or "not run"
        if t is not None and status == "PASSED" and t["speedup"] > 0:
            values.append(t["speedup"])
        else:
            values.append(0.0)
            zeros.append((workload_label(rec), "not timed" if status == "PASSED" else status))
    if len(zeros) == len(values) and all(why in ("not timed", "not run", "COMPILED")
                                         for _, why in zeros):
        return None, zeros
    return statistics.fmean(values), zeros


def workload_lines(recs: list[Record]) -> list[str]:
    """One line per workload, like the starter kit's run_local.py: status | latency | speedup |
    abs err."""
    rows = []
    # --fib-clock=flashinfer-bench: what its method read, beside the kernel's own time
    judged = any(r.timing is not None and "judge_latency_ms" in r.timing for r in recs)
    for rec in sorted(recs, key=lambda r: (len(workload_label(r)), workload_label(r))):
        t = rec.timing
        speedup = t["speedup"] if t is not None else None
        row = [workload_label(rec), rec.status or "-",
               fmt_time(t["latency_ms"] if t is not None else None),
               fmt(speedup, ".2f") + ("x" if speedup else ""),
               fmt(rec.metrics.get("max_abs"), ".3g")]
        if judged:
            judge = t.get("judge_speedup") if t is not None else None
            row += [fmt_time(t.get("judge_latency_ms") if t is not None else None),
                    fmt(judge, ".2f") + ("x" if judge else "")]
        rows.append(row)
    header = ["workload", "status", "latency", "speedup", "abs err"]
    if judged:
        header += ["flashinfer-bench latency", "its speedup"]
    return render(header, rows, [False, False, *[True] * (len(header) - 2)])
