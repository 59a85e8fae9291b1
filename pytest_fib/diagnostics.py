"""External diagnostic tools a worker can run under: compute-sanitizer (--fib-sanitizer) and Nsight
Compute (--fib-ncu). The command line here; ``pool.py`` starts a one-shot worker under it; the
runner turns a sanitizer's error count into a SANITIZER verdict."""

from __future__ import annotations

import re

from .settings import Settings

NCU_METRICS = ("gpu__time_duration.sum,dram__bytes.sum,"
               "sm__throughput.avg.pct_of_peak_sustained_elapsed")


def diagnostic_wrapper(settings: Settings) -> list[str] | None:
    """The command a worker runs under for --fib-sanitizer / --fib-ncu (None: plain)."""
    if settings.sanitizer:
        return ["compute-sanitizer", "--tool", settings.sanitizer, "--print-limit", "20",
                "--target-processes", "all"]
    if settings.ncu:
        # Clocks left as the card has them (never lock them on a shared machine); cold L2 per
        # kernel like our own timing; gpu__time_duration is the kernel's device time.
        return ["ncu", "--clock-control", "none", "--cache-control", "all",
                "--metrics", NCU_METRICS,
                "--target-processes", "all"]
    return None


def sanitizer_errors(report: str) -> int:
    """The error count compute-sanitizer printed (its "ERROR SUMMARY: N errors" line)."""
    counts = [int(n) for n in re.findall(r"ERROR SUMMARY:\s*(\d+)\s+error", report)]
    return max(counts) if counts else 0
