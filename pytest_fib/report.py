"""What a person reads: the run header, the end-of-session summary, packed solutions."""

from __future__ import annotations

import statistics
from typing import Any

from .paths import component, inside
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
        + f"; reproduce inputs with --fib-seed={s.seed}"
        + (f" ({s.seed_source})" if "last run" in s.seed_source else ""),
    ]
    unsupported = [p for p in fib.load_problems if p.kind == "unsupported"]
    invalid = [p for p in fib.load_problems if p.kind != "unsupported"]
    if unsupported:
        lines.append(f"pytest-fib: {len(unsupported)} file(s) use a schema newer than "
                     f"flashinfer-bench 0.1.2 (skipped, listed at the end)")
    if invalid:
        lines.append(f"pytest-fib: {len(invalid)} file(s) cannot be loaded (failing load[...] "
                     "items, run whatever -k/-m select)")
    lines += [f"pytest-fib: --fib-traces {line}" for line in fib.torn]
    return lines


def terminal_summary(tr: Any, fib: FibSession) -> None:
    if fib.settings.selftest:
        tr.write_sep("-", "pytest-fib self-test: which check caught which exploit")
        seen = sorted({(n, g, st): e for n, e, g, st in fib.selftest}.items())
        for (name, got, stage), expect in seen:
            tr.write_line(f"{name:<28} caught by {got:<20} at {stage:<12} {expect['why']}")
    if fib.load_problems:
        tr.write_sep("-", "pytest-fib: files not loaded")
        for p in fib.load_problems:
            tr.write_line(f"{'SKIP' if p.kind == 'unsupported' else 'FAIL'} {p.where}: {p.message}")
    lines = timing_table(fib)
    if lines:
        tr.write_sep("-", "pytest-fib: timing summary (speedup = reference time / solution time)")
        for line in lines:
            tr.write_line(line)
    fallback = events_timed(fib)
    if fallback:
        tr.write_line(f"WARNING: {len(fallback)} timing item(s) could not be measured with CUPTI "
                      "and were timed with CUDA events (launch overhead included; kept out of "
                      "the speedup columns): " + ", ".join(fallback), yellow=True)


def events_timed(fib: FibSession) -> list[str]:
    """Timing items measured by CUDA events around each call instead of CUPTI: never silent."""
    return sorted(f"{r['case'].definition.name}::{r['case'].solution.name}"
                  f"[{r['case'].workload.uuid[:8]}]" for r in fib.results.values()
                  if r.get("timing", {}).get("clock") == "cuda-events")


def solution_rows(fib: FibSession) -> list[dict[str, Any]]:
    """One row per (definition, solution): the contest's score and friends."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in fib.results.values():
        case = rec["case"]
        groups.setdefault((case.definition.name, case.solution.name), []).append(rec)
    rows = []
    for (definition, solution), recs in sorted(groups.items()):
        timed = [r["timing"] for r in recs if "timing" in r]
        # CUDA-event times (a CUPTI fallback) include launch overhead: not in the same mean
        speedups = [t["speedup"] for t in timed if t["speedup"] > 0
                    and t.get("clock") != "cuda-events"]
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
    tested = {key.split("::")[1] for key in fib.outcomes}  # solutions with an item that ran
    for sol in fib.solutions:
        if sol.origin != "local" or sol.name not in tested:
            continue
        model = Solution.model_validate(sol.raw)
        name = component(sol.name)  # checked at load (paths.py); never a path of its own
        assert name is not None
        inside(out, f"{name}.json").write_text(model.model_dump_json(indent=2) + "\n")


def write_report(fib: FibSession, exitstatus: int) -> None:
    """--fib-report DIR: summary.md (fit for $GITHUB_STEP_SUMMARY) and one speedup plot (SVG, no
    plotting library needed) per definition."""
    out = fib.settings.report
    assert out is not None
    out.mkdir(parents=True, exist_ok=True)
    s = fib.settings
    counts: dict[str, int] = {}
    for rec in fib.results.values():
        counts[rec.get("status", "?")] = counts.get(rec.get("status", "?"), 0) + 1
    lines = [
        "# pytest-fib results", "",
        f"- dataset: `{s.dataset}` ({s.dataset_source})",
        f"- device: {s.device}" + (f" ({s.gpu_count} GPU)" if s.gpu_count else " (host clock)"),
        f"- reproduce: `--fib-seed={s.seed}`; pytest exit status {exitstatus}",
        "- outcomes: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"), "",
        "| definition | solution | passed | median latency (ms) | speedup (mean) | speedup "
        "(geomean) | % of peak bandwidth |",
        "|---|---|---|---|---|---|---|",
    ]
    def f(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)
    for r in solution_rows(fib):
        lines.append(f"| {r['definition']} | {r['solution']} | {r['passed']}/{r['cases']} | "
                     f"{f(r['median_latency_ms'], '.4f')} | {f(r['speedup_mean'], '.2f')} | "
                     f"{f(r['speedup_geomean'], '.2f')} | {f(r['pct_of_peak'], '.1f')} |")
    failed = [(k, r) for k, r in fib.results.items() if r.get("status") not in (None, "PASSED",
                                                                                 "COMPILED")]
    if failed:
        lines += ["", "## Failures", ""]
        for key, rec in sorted(failed)[:200]:
            first = (rec.get("log") or "").strip().splitlines()[:1]
            lines.append(f"- `{key}`: **{rec['status']}** {first[0][:200] if first else ''}")
    plots = speedup_plots(fib, out)
    if plots:
        lines += ["", "## Speedup per workload", ""]
        lines += [f"![{name}]({path.name})" for name, path in plots]
    if fib.load_problems:
        lines += ["", "## Files not loaded", ""]
        lines += [f"- `{p.where}`: {p.message}" for p in fib.load_problems]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def speedup_plots(fib: FibSession, out: Any) -> list[tuple[str, Any]]:
    """One bar chart per definition: speedup (reference / solution) per workload and solution."""
    by_def: dict[str, list[dict[str, Any]]] = {}
    for rec in fib.results.values():
        if "timing" in rec:
            by_def.setdefault(rec["timing"]["definition"], []).append(rec["timing"])
    plots = []
    for definition, rows in sorted(by_def.items()):
        path = inside(out, f"speedup_{component(definition)}.svg")
        path.write_text(bar_chart_svg(definition, rows))
        plots.append((definition, path))
    return plots


def bar_chart_svg(title: str, rows: list[dict[str, Any]]) -> str:
    from .cases import safe

    def label(r: dict[str, Any]) -> str:
        return safe("-".join(f"{k}={v}" for k, v in sorted(r["axes"].items())))
    workloads = sorted({label(r) for r in rows}, key=lambda w: (len(w), w))
    solutions = sorted({r["solution"] for r in rows})
    value = {(label(r), r["solution"]): r["speedup"] for r in rows}
    top = max([1.0, *value.values()]) * 1.1
    width, height, left, bottom = max(420, 60 + 26 * len(workloads) * len(solutions)), 300, 50, 60
    plot_h = height - bottom - 30
    bar_w = max(4, (width - left - 10) / max(1, len(workloads) * len(solutions)) - 2)
    colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="10">',
             f'<text x="{left}" y="15" font-size="13">{title}: speedup over the reference</text>']
    y1 = 30 + plot_h - plot_h / top
    parts.append(f'<line x1="{left}" x2="{width - 5}" y1="{y1:.1f}" y2="{y1:.1f}" '
                 f'stroke="#999" stroke-dasharray="4 3"/><text x="5" y="{y1 + 3:.1f}">1.0x</text>')
    x = left
    for w in workloads:
        for j, sol in enumerate(solutions):
            v = value.get((w, sol))
            if v is not None:
                h = plot_h * v / top
                parts.append(f'<rect x="{x:.1f}" y="{30 + plot_h - h:.1f}" width="{bar_w:.1f}" '
                             f'height="{h:.1f}" fill="{colors[j % len(colors)]}">'
                             f'<title>{sol} {w}: {v:.2f}x</title></rect>')
            x += bar_w + 2
        parts.append(f'<text x="{x - (bar_w + 2) * len(solutions) / 2:.1f}" y="{height - bottom + 42}" '
                     f'text-anchor="end" transform="rotate(-35 {x - (bar_w + 2) * len(solutions) / 2:.1f},'
                     f'{height - bottom + 42})">{w}</text>')
        x += 6
    for j, sol in enumerate(solutions):
        parts.append(f'<rect x="{width - 150}" y="{20 + 12 * j}" width="8" height="8" '
                     f'fill="{colors[j % len(colors)]}"/><text x="{width - 138}" '
                     f'y="{28 + 12 * j}">{sol[:22]}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
