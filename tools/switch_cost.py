"""What a switch to a new solution's process costs (issue 13), on a worker pool of this machine.

Three series of ping requests, each answered by a solution's process forked from the zygote:
- ``same``: N requests for one solution (no switch: the floor);
- ``back-to-back``: N requests for N distinct solutions with no pause (each switch reaps the last
  child and takes the spare before its start-up -- a CUDA context, CUPTI -- may be over: the worst
  case);
- ``after work``: the same with 2 s between requests, as when a solution's items run while the
  spare starts (the usual case).
Prints medians in ms, and whether the children were forks or exec'd interpreters
(PYTEST_FIB_EXEC_CHILDREN: unset/auto = fork, exec only where CUDA needs it; 1 = always exec).
Usage: python tools/switch_cost.py [N] [cpu|cuda]"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

from pytest_fib.pool import Pool


def timed(pool: Pool, keys: list[str], pause: float = 0.0) -> tuple[list[float], set[bool]]:
    out, execd = [], set()
    for key in keys:
        time.sleep(pause)
        start = time.perf_counter()
        resp = pool.call({"op": "ping", "solution": {"name": key}}, 120)
        out.append((time.perf_counter() - start) * 1e3)
        execd.add(bool(resp.get("execd")))
    return out, execd


def line(label: str, ms: list[float]) -> str:
    return f"{label} {statistics.median(ms):.1f} ms (max {max(ms):.1f})"


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    pool = Pool(device, Path(tempfile.mkdtemp()))
    pool.start()
    timed(pool, ["warm", "warm2"], 2.0)  # the zygote's start-up and the first children
    same, _ = timed(pool, ["same"] * n)
    rushed, execd = timed(pool, [f"s{i}" for i in range(n)])
    paced, more = timed(pool, [f"p{i}" for i in range(n)], 2.0)
    pool.close()
    how = {frozenset({False}): "forks", frozenset({True}): "exec'd"}.get(
        frozenset(execd | more), "mixed")
    print(f"{device} ({how}, median of {n}): {line('same solution', same)}; "
          f"{line('new solution back-to-back', rushed)}; "
          f"{line('new solution after 2 s of work', paced)}")
