"""What a person reads: the run header, the end-of-session summary, packed solutions."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from .outcome import TimingInfo
from .paths import component, inside
from .results import Record
from .session import FibSession


def header(fib: FibSession, active: bool) -> list[str]:
    """The lines pytest prints under its own header."""
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
    """The self-test table, the files not loaded, the timing table and its warnings."""
    if fib.settings.selftest:
        tr.write_sep("-", "pytest-fib self-test: which check caught which exploit")
        seen = sorted({(n, g, st): e for n, e, g, st in fib.selftest}.items())
        for (name, got, stage), expect in seen:
            tr.write_line(f"{name:<28} caught by {got:<20} at {stage:<12} {expect['why']}")
    if fib.load_problems:
        tr.write_sep("-", "pytest-fib: files not loaded")
        for p in fib.load_problems:
            tr.write_line(f"{'SKIP' if p.kind == 'unsupported' else 'FAIL'} {p.where}: {p.message}")
    lines = timing_table(fib, tr.config.getoption("verbose", 0))
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
    return sorted(f"{r.case.definition.name}::{r.case.solution.name}"
                  f"[{r.case.workload.uuid[:8]}]" for r in fib.results
                  if r.timing is not None and r.timing.get("clock") == "cuda-events")


def solution_rows(fib: FibSession) -> list[dict[str, Any]]:
    """One row per (definition, solution): the contest's score and friends."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for rec in fib.results:
        case = rec.case
        groups.setdefault((case.definition.name, case.solution.name), []).append(rec)
    rows = []
    for (definition, solution), recs in sorted(groups.items(), key=lambda g: g[0]):
        timed = [r.timing for r in recs if r.timing is not None]
        # CUDA-event times (a CUPTI fallback) include launch overhead: not in the same mean
        speedups = [t["speedup"] for t in timed if t["speedup"] > 0
                    and t.get("clock") != "cuda-events"]
        pct = [t["pct_of_peak_bandwidth"] for t in timed if "pct_of_peak_bandwidth" in t]
        from .tables import score

        contest, zeros = score(recs)
        rows.append({
            "definition": definition, "solution": solution,
            "passed": sum(r.status == "PASSED" for r in recs), "cases": len(recs),
            # compiled without a GPU to run it: neither passed nor failed (issue 18)
            "compiled": sum(r.status == "COMPILED" for r in recs),
            "failed": sum(r.status not in (None, "PASSED", "COMPILED") for r in recs),
            "score": contest, "zeros": zeros,
            "timed": len(timed),
            "median_latency_ms": (statistics.median(t["latency_ms"] for t in timed)
                                  if timed else None),
            "speedup_mean": statistics.fmean(speedups) if speedups else None,
            "speedup_geomean": statistics.geometric_mean(speedups) if speedups else None,
            "pct_of_peak": statistics.fmean(pct) if pct else None,
            "clock": timed[0]["clock"] if timed else "",
        })
    return rows


TABLE_HEADER = ("definition", "solution", "passed", "failed", "compiled only", "median latency",
                "score", "mean (timed)", "geomean (timed)", "% peak", "clock")


def table_cells(r: dict[str, Any]) -> list[str]:
    from .tables import fmt, fmt_time

    return [r["definition"], r["solution"], f"{r['passed']}/{r['cases']}", str(r["failed"]),
            str(r["compiled"]), fmt_time(r["median_latency_ms"]), fmt(r["score"], ".2f"),
            fmt(r["speedup_mean"], ".2f"), fmt(r["speedup_geomean"], ".2f"),
            fmt(r["pct_of_peak"], ".1f"), r["clock"]]


def timing_table(fib: FibSession, verbose: int = 0) -> list[str]:
    """Columns as wide as their data; the score and what counts 0 in it; with -v one line per
    workload (tables.py)."""
    from .tables import render, workload_lines

    rows = solution_rows(fib)
    if not any(r["timed"] for r in rows):
        return []
    out = render(TABLE_HEADER, [table_cells(r) for r in rows],
                 [False, False, True, True, True, True, True, True, True, True, False])
    out.append("score = mean speedup over all workloads, a failed or untimed one counting 0 "
               "(the contest's rule)")
    for r in rows:
        if r["zeros"] and r["score"] is not None:
            listed = ", ".join(f"{w} ({why})" for w, why in r["zeros"][:8])
            more = f" and {len(r['zeros']) - 8} more" if len(r["zeros"]) > 8 else ""
            out.append(f"  {r['definition']} / {r['solution']}: {len(r['zeros'])} of "
                       f"{r['cases']} count 0: {listed}{more}")
    if any(r.timing is not None and "judge_latency_ms" in r.timing for r in fib.results):
        out.append("--fib-clock=flashinfer-bench: what flashinfer-bench 0.1.2's method (CUDA "
                   "events around each call) reads for the same calls is in the -v lines, in "
                   "--benchmark-json (judge_*) and in junit (fib_judge_*)")
    if verbose > 0:
        by_row: dict[tuple[str, str], list[Record]] = {}
        for rec in fib.results:
            case = rec.case
            by_row.setdefault((case.definition.name, case.solution.name), []).append(rec)
        for (definition, solution), recs in sorted(by_row.items()):
            out += ["", f"{definition} / {solution}:"]
            out += [f"  {line}" for line in workload_lines(recs)]
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
    """--fib-report DIR: summary.md (fit for $GITHUB_STEP_SUMMARY) and one speedup plot (PNG, with
    the report extra's matplotlib) per definition, embedded in it too."""
    out = fib.settings.report
    assert out is not None
    out.mkdir(parents=True, exist_ok=True)
    s = fib.settings
    counts: dict[str, int] = {}
    for rec in fib.results:
        counts[rec.status or "?"] = counts.get(rec.status or "?", 0) + 1
    lines = [
        "# pytest-fib results", "",
        f"- dataset: `{s.dataset}` ({s.dataset_source})",
        f"- device: {s.device}" + (f" ({s.gpu_count} GPU)" if s.gpu_count else " (host clock)"),
        f"- reproduce: `--fib-seed={s.seed}`; pytest exit status {exitstatus}",
        "- outcomes: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"), "",
    ]
    from . import plots as plots_mod
    from .tables import markdown

    rows = solution_rows(fib)
    lines += markdown(TABLE_HEADER, [table_cells(r) for r in rows])
    lines += ["", "score: the contest's, the mean speedup over all workloads; a workload that "
              "failed or was not timed counts 0."]
    lines += [f"- {r['definition']} / {r['solution']}: {len(r['zeros'])} of {r['cases']} count 0: "
              + ", ".join(f"`{w}` ({why})" for w, why in r["zeros"][:20])
              for r in rows if r["zeros"] and r["score"] is not None]
    failed = [r for r in fib.results if r.status not in (None, "PASSED", "COMPILED")]
    if failed:
        lines += ["", "## Failures", ""]
        for rec in sorted(failed, key=lambda r: r.case.key)[:200]:
            lines.append(f"- `{rec.nodeid or rec.case.key}`: **{rec.status}** {_gist(rec.log)}")
    plots = speedup_plots(fib, out)
    if plots:
        lines += ["", "## Speedup per workload", ""]
        # embedded, so the image shows where a relative link does not ($GITHUB_STEP_SUMMARY)
        lines += [f"![{name}]({plots_mod.data_uri(path.read_bytes())})\n\n({path.name})"
                  for name, path in plots]
    elif any(r.timing is not None for r in fib.results) and not plots_mod.available():
        lines += ["", "(speedup plots need matplotlib: pip install 'pytest-fib[report]')"]
    if fib.load_problems:
        lines += ["", "## Files not loaded", ""]
        lines += [f"- `{p.where}`: {p.message}" for p in fib.load_problems]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def _gist(text: str, limit: int = 300) -> str:
    """The first line of a failure, and the next one where the first only announces it
    ("... did not build:"): what went wrong, not just that something did."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    gist = lines[0]
    if gist.endswith(":") and len(lines) > 1:
        gist += " " + next((line for line in lines[1:] if "error" in line.lower()), lines[1])
    return gist[:limit]


def speedup_plots(fib: FibSession, out: Path) -> list[tuple[str, Path]]:
    """One bar chart per definition: speedup (reference / solution) per workload and solution,
    as PNG (plots.py; none without matplotlib)."""
    from . import plots
    from .cases import safe

    if not plots.available():
        return []
    by_def: dict[str, list[TimingInfo]] = {}
    for rec in fib.results:
        if rec.timing is not None:
            by_def.setdefault(rec.timing["definition"], []).append(rec.timing)

    def label(r: TimingInfo) -> str:  # as in node ids: axes, then a short uuid
        axes = "-".join(f"{k}:{v}" for k, v in sorted(r["axes"].items()))
        short = safe(r.get("workload_uuid", ""))[:8]
        return f"{axes}-{short}" if axes else short
    made = []
    for definition, rows in sorted(by_def.items()):
        path = inside(out, f"speedup_{component(definition)}.png")
        path.write_bytes(plots.speedup_png(definition, rows, label))
        made.append((definition, path))
    return made


