"""What a switch to a new solution's process costs (issue 13): a worker pool on this machine,
ping requests alternating between N distinct solution keys (each switch reaps the last child and
takes the spare, forking a new spare) against N requests for one key. Prints medians in ms.
Usage: python tools/switch_cost.py [N] [cpu|cuda]"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

from pytest_fib.pool import Pool


def timed(pool: Pool, keys: list[str]) -> list[float]:
    out = []
    for key in keys:
        start = time.perf_counter()
        pool.call({"op": "ping", "solution": {"name": key}}, 60)
        out.append((time.perf_counter() - start) * 1e3)
    return out


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    pool = Pool(device, Path(tempfile.mkdtemp()))
    pool.start()
    timed(pool, ["warm", "warm2"])  # the zygote's start-up and the first children
    same = timed(pool, ["same"] * n)
    switch = timed(pool, [f"s{i}" for i in range(n)])
    pool.close()
    print(f"{device}: same solution {statistics.median(same):.2f} ms per request; "
          f"new solution {statistics.median(switch):.2f} ms per request "
          f"(median of {n}; max {max(switch):.1f} ms)")
