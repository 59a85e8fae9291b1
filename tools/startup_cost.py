"""Start-up cost of an installed, unused pytest-fib (issue 16): ``python -m pytest --co -q`` in an
unrelated project (one plain test, no kernels/, no fib_* ini key) with ``-p no:fib`` and without,
interleaved, N runs each; prints the medians and their difference.

    python tools/startup_cost.py [N]        # N = 15 by default
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(runs: int) -> None:
    project = Path(tempfile.mkdtemp(prefix="fib-startup-"))
    (project / "test_plain.py").write_text("def test_plain():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env["FIB_DATASET_PATH"] = "/no/such/dataset"  # a stale setting must cost nothing either
    times: dict[str, list[float]] = {"without (-p no:fib)": [], "with pytest-fib": []}
    for _ in range(runs):
        for label, extra in (("without (-p no:fib)", ["-p", "no:fib"]), ("with pytest-fib", [])):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider",
                            *extra], cwd=project, env=env, check=True, capture_output=True)
            times[label].append(time.perf_counter() - start)
    medians = {label: statistics.median(t) for label, t in times.items()}
    for label, median in medians.items():
        print(f"{label:>22}: median {median * 1000:6.0f} ms over {runs} runs")
    cost = medians["with pytest-fib"] - medians["without (-p no:fib)"]
    print(f"{'pytest-fib costs':>22}: {cost * 1000:6.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
