"""What a person reads: the run header, the end-of-session summary, packed solutions."""

from __future__ import annotations

import json
import statistics
from typing import Any

from .session import FibSession


def header(fib: FibSession, active: bool) -> list[str]:
    s = fib.settings
    ds = fib.dataset
    if not active:
        return [f"pytest-fib: inactive (no {s.kernels.name}/ folder and no --fib-* option)"]
    lines = [
        f"pytest-fib: dataset {s.dataset} (from {s.dataset_source}): {len(ds.definitions)} "
        f"definitions, {sum(map(len, ds.workloads.values()))} workloads; loaded in "
        f"{fib.load_seconds * 1000:.0f} ms",
        f"pytest-fib: solutions {s.solutions}: {len(fib.solutions)} usable "
        f"(kernels folder {s.kernels}, {s.kernels_source}); {len(fib.cases)} cases",
        f"pytest-fib: device {s.device}"
        + (f" ({s.gpu_count} GPU(s))" if s.gpu_count else
           f" (no GPU: Triton runs in its interpreter, CUDA is compiled only; "
           f"CPU budget {s.cpu_budget / 2**20:.0f} MiB)")
        + f"; reproduce inputs with --fib-seed={s.seed}",
    ]
    unsupported = [p for p in fib.problems if p.kind == "unsupported"]
    invalid = [p for p in fib.problems if p.kind != "unsupported"]
    if unsupported:
        lines.append(f"pytest-fib: {len(unsupported)} file(s) use a schema newer than "
                     f"flashinfer-bench 0.1.2 (skipped, listed at the end)")
    if invalid:
        lines.append(f"pytest-fib: {len(invalid)} file(s) cannot be loaded (failing items)")
    return lines


def terminal_summary(tr: Any, fib: FibSession) -> None:
    if fib.settings.selftest:
        tr.write_sep("-", "pytest-fib self-test: which check caught which exploit")
        seen = sorted({(n, g, st): e for n, e, g, st in fib.selftest}.items())
        for (name, got, stage), expect in seen:
            tr.write_line(f"{name:<28} caught by {got:<20} at {stage:<12} {expect['why']}")
    if fib.problems:
        tr.write_sep("-", "pytest-fib: files not loaded")
        for p in fib.problems:
            tr.write_line(f"{'SKIP' if p.kind == 'unsupported' else 'FAIL'} {p.where}: {p.message}")
    lines = timing_table(fib)
    if lines:
        tr.write_sep("-", "pytest-fib: timing summary (speedup = reference time / solution time)")
        for line in lines:
            tr.write_line(line)


def solution_rows(fib: FibSession) -> list[dict[str, Any]]:
    """One row per (definition, solution): the contest's score and friends."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in fib.results.values():
        case = rec["case"]
        groups.setdefault((case.definition.name, case.solution.name), []).append(rec)
    rows = []
    for (definition, solution), recs in sorted(groups.items()):
        timed = [r["timing"] for r in recs if "timing" in r]
        speedups = [t["speedup"] for t in timed if t["speedup"] > 0]
        pct = [t["pct_of_peak_bandwidth"] for t in timed if "pct_of_peak_bandwidth" in t]
        rows.append({
            "definition": definition, "solution": solution,
            "passed": sum(r.get("status") == "PASSED" for r in recs), "cases": len(recs),
            "timed": len(timed),
            "median_latency_ms": statistics.median(t["latency_ms"] for t in timed) if timed else None,
            "speedup_mean": statistics.fmean(speedups) if speedups else None,
            "speedup_geomean": statistics.geometric_mean(speedups) if speedups else None,
            "pct_of_peak": statistics.fmean(pct) if pct else None,
            "clock": timed[0]["clock"] if timed else "",
        })
    return rows


def timing_table(fib: FibSession) -> list[str]:
    rows = solution_rows(fib)
    if not any(r["timed"] for r in rows):
        return []
    def f(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)
    out = [f"{'definition':<32} {'solution':<36} {'passed':>8} {'median ms':>10} "
           f"{'speedup':>8} {'geomean':>8} {'%peak':>6} clock"]
    for r in rows:
        out.append(f"{r['definition'][:32]:<32} {r['solution'][:36]:<36} "
                   f"{r['passed']:>3}/{r['cases']:<4} {f(r['median_latency_ms'], '.4f'):>10} "
                   f"{f(r['speedup_mean'], '.2f'):>8} {f(r['speedup_geomean'], '.2f'):>8} "
                   f"{f(r['pct_of_peak'], '.1f'):>6} {r['clock']}")
    return out


def pack_solutions(fib: FibSession) -> None:
    """--fib-pack: the Solution JSON of every local solution, exactly as tested."""
    from flashinfer_bench.data import Solution

    out = fib.settings.pack
    assert out is not None
    out.mkdir(parents=True, exist_ok=True)
    for sol in fib.solutions:
        if sol.origin != "local":
            continue
        model = Solution.model_validate(sol.raw)
        (out / f"{sol.name}.json").write_text(model.model_dump_json(indent=2) + "\n")


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
