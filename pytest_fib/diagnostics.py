"""External diagnostic tools: compute-sanitizer (--fib-sanitizer), under which ``pool.py`` starts
a one-shot worker per item, and the error count the runner turns into a SANITIZER verdict.
Nsight Compute (--fib-ncu) is ``ncu.py``: it profiles the solution alone, in a worker of its own
(Runner.profile), never the item's own run."""

from __future__ import annotations

import re

from .settings import Settings


def diagnostic_wrapper(settings: Settings) -> list[str] | None:
    """The command a worker runs under for --fib-sanitizer (None: plain)."""
    if settings.sanitizer:
        return ["compute-sanitizer", "--tool", settings.sanitizer, "--print-limit", "20",
                "--target-processes", "all"]
    return None


def sanitizer_errors(report: str) -> int:
    """The error count compute-sanitizer printed in its summary line."""
    # memcheck/initcheck/synccheck: "ERROR SUMMARY: N errors"; racecheck: "RACECHECK SUMMARY:
    # H hazards displayed (N errors, W warnings)" (seen on an H200, tools/gpu/ncu19.sh)
    counts = [int(n) for n in re.findall(r"ERROR SUMMARY:\s*(\d+)\s+error", report)]
    counts += [int(n) for n in re.findall(r"RACECHECK SUMMARY:[^(\n]*\((\d+)\s+error", report)]
    return max(counts) if counts else 0
