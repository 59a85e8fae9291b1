"""``--fib-ncu``: Nsight Compute on the solution's own kernels, nothing else (issue 19).

The item's own checks and its CUPTI timing run as always, outside ncu. Profiling is one more
request, once per solution x workload (in the first of its items that runs), to a one-shot worker
started under ncu: it builds the solution, makes the workload's inputs, calls the solution once
outside any range (builds, autotuning and first-launch work stay out), then ``CALLS`` times inside
an NVTX range named ``RANGE``. ncu profiles only kernels launched in that range
(``--nvtx --nvtx-include``), at most ``LAUNCH_LIMIT`` of them: no warm-up, L2 flush, marker,
poison or reference kernel is ever replayed.

The ``.ncu-rep`` file is saved in ``<--fib-report>/ncu/`` or ``<rootdir>/.pytest-fib/ncu/``; the
item gets a per-kernel table read back from it (``ncu --import --csv --page raw``): name, calls,
median duration, DRAM bytes and SM throughput.

No torch here: the controller uses this module; the worker side is ``worker.op_profile``.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import statistics
import subprocess
from pathlib import Path

RANGE = "fib_solution"  # the NVTX range around the solution's profiled calls
CALLS = 3  # profiled calls of the solution (each of its kernels appears this many times)
LAUNCH_LIMIT = 64  # at most this many kernel launches are profiled (replays cost seconds each)
# Always collected, whatever the set: what the item's table shows.
DURATION = "gpu__time_duration.sum"
DRAM = "dram__bytes.sum"
SM = "sm__throughput.avg.pct_of_peak_sustained_elapsed"
METRICS = (DURATION, DRAM, SM)
SETS = ("basic", "detailed", "full", "roofline", "pmsampling", "nvlink")
DEFAULT = "basic"  # the fastest set with Speed Of Light, launch statistics and occupancy


def parse_choice(value: str) -> tuple[str, list[str]]:
    """``--fib-ncu`` value -> ("set", [name]) or ("sections", [names]). A known set name, or a
    comma-separated list of ncu section identifiers (``ncu --list-sections``). Raises ValueError
    with the fix."""
    value = value.strip()
    if value in SETS:
        return "set", [value]
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if not re.fullmatch(r"[A-Za-z0-9_]+", n)]
    if not names or bad:
        raise ValueError(f"{value!r} is neither an ncu set ({', '.join(SETS)}) nor a "
                         "comma-separated list of section identifiers such as "
                         "SpeedOfLight,MemoryWorkloadAnalysis (ncu --list-sections)")
    return "sections", names


def command(choice: str, report: Path, ncu: str = "ncu") -> list[str]:
    """The ncu command line a profiling worker runs under; ``report`` without its extension."""
    kind, names = parse_choice(choice)
    chosen = ["--set", names[0]] if kind == "set" else [a for n in names
                                                         for a in ("--section", n)]
    # Clocks left as the card has them (never lock them on a shared machine); a cold L2 per
    # kernel, like the harness's own timing.
    return [ncu, "--target-processes", "all", "--nvtx", "--nvtx-include", f"{RANGE}/",
            "--launch-count", str(LAUNCH_LIMIT), "--clock-control", "none",
            "--cache-control", "all", *chosen, "--metrics", ",".join(METRICS),
            "--export", str(report), "--force-overwrite"]


def report_path(folder: Path, item_name: str) -> Path:
    """Where an item's report goes (without ncu's ``.ncu-rep`` extension): a file name made
    from the item's name, safe on any file system."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", item_name).strip("._")[:180] or "item"
    return folder / safe


def read_back(report: Path, ncu: str = "ncu", timeout: float = 120) -> str:
    """The raw page of a saved report, as CSV."""
    proc = subprocess.run([ncu, "--import", str(report), "--csv", "--page", "raw",
                           "--print-units", "base", "--metrics", ",".join(METRICS)],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ncu --import {report} failed ({proc.returncode}):\n"
                           f"{(proc.stderr or proc.stdout)[-2000:]}")
    return proc.stdout


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def kernels(raw_csv: str) -> list[dict[str, float | str | int]]:
    """Per kernel name (in first-launch order): calls, median duration (ns), median DRAM bytes,
    median SM throughput (%), from ncu's raw CSV page (a header row, a units row, a row per
    profiled launch; lines before the header are ncu's own messages)."""
    lines = raw_csv.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        return []
    rows = list(csv.reader(io.StringIO("\n".join(lines[start:]))))
    header = rows[0]
    col = {name: header.index(name) for name in ("Kernel Name", *METRICS) if name in header}
    if "Kernel Name" not in col:
        return []
    per: dict[str, list[list[str]]] = {}
    for row in rows[1:]:
        if len(row) != len(header) or not row[0].strip().isdigit():
            continue  # the units row, ncu's trailing messages
        per.setdefault(row[col["Kernel Name"]], []).append(row)
    out: list[dict[str, float | str | int]] = []
    for name, launches in per.items():
        entry: dict[str, float | str | int] = {"kernel": name, "calls": len(launches)}
        for metric in METRICS:
            if metric in col:
                values = [v for v in (_number(r[col[metric]]) for r in launches) if v is not None]
                if values:
                    entry[metric] = statistics.median(values)
        out.append(entry)
    return out


def table(entries: list[dict[str, float | str | int]], report: Path) -> str:
    """The item's report section: one line per kernel, then where the full report is."""
    if not entries:
        return (f"ncu profiled no kernel in the solution's calls (nothing launched inside the "
                f"{RANGE!r} range?). Report: {report}")
    width = min(max(len(str(e["kernel"])) for e in entries), 90)
    lines = [f"{'kernel':<{width}}  calls  duration  DRAM bytes  SM throughput"]
    for e in entries:
        name = str(e["kernel"])
        name = name if len(name) <= width else name[: width - 1] + "…"
        dur = e.get(DURATION)
        dram = e.get(DRAM)
        sm = e.get(SM)
        lines.append(f"{name:<{width}}  {e['calls']:>5}  "
                     f"{_time(float(dur)) if dur is not None else '-':>8}  "
                     f"{_bytes(float(dram)) if dram is not None else '-':>10}  "
                     f"{f'{float(sm):.1f} %' if sm is not None else '-':>13}")
    lines.append(f"(medians over the solution's {CALLS} profiled calls; full report: "
                 f"{report}, open it with ncu-ui or `ncu --import {report} --page details`)")
    return "\n".join(lines)


def _time(ns: float) -> str:
    return f"{ns / 1e3:.3g} us" if ns < 1e6 else f"{ns / 1e6:.3g} ms"


def _bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def executable() -> str | None:
    """ncu on PATH, else in $CUDA_HOME/bin or /usr/local/cuda/bin."""
    import os

    found = shutil.which("ncu")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if root and Path(root, "bin", "ncu").is_file():
            return str(Path(root, "bin", "ncu"))
    return None
