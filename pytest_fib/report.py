"""What a person reads: the run header, the end-of-session summary, packed solutions."""

from __future__ import annotations

import json
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
    if fib.problems:
        tr.write_sep("-", "pytest-fib: files not loaded")
        for p in fib.problems:
            tr.write_line(f"{'SKIP' if p.kind == 'unsupported' else 'FAIL'} {p.where}: {p.message}")
    rows = [r for r in fib.results.values() if r.get("latency_ms")]
    if rows:
        from .summary import timing_table  # noqa: PLC0415 (only when there are timings)

        tr.write_sep("-", "pytest-fib: timing summary")
        for line in timing_table(fib):
            tr.write_line(line)


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
