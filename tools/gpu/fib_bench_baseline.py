"""Wall time of flashinfer-bench 0.1.2's own Benchmark over the given definitions of a dataset
folder (its solutions/ holds our kernels, packed with --fib-pack), for the session-time comparison
in docs/timing.md. Prints the wall time and every trace's status and latency, so the comparison
is only made when it ran what we ran. Usage: python fib_bench_baseline.py DATASET DEF [DEF ...]"""
import collections
import logging
import sys
import time

if __name__ == "__main__":  # flashinfer-bench's runner spawns processes: keep this guarded
    from flashinfer_bench import Benchmark, BenchmarkConfig, TraceSet

    root, names = sys.argv[1], sys.argv[2:]
    # Its own log lines (one per solution and workload), stamped: a run cut short by its time
    # limit still shows how far it got and at what pace.
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)8.0f ms %(message)s")
    start = time.perf_counter()
    ts = TraceSet.from_path(root)
    cfg = BenchmarkConfig(warmup_runs=10, iterations=50, num_trials=3, definitions=names)
    bench = Benchmark(ts, cfg)
    result = bench.run_all(dump_traces=False)
    bench.close()
    wall = time.perf_counter() - start
    traces = [t for v in result.traces.values() for t in v if t.evaluation]
    for t in traces:
        ev = t.evaluation
        lat = ev.performance.latency_ms * 1e3 if ev.performance else float("nan")
        print(f"{t.definition} {t.solution} {t.workload.axes} {ev.status.value} {lat:.2f}us")
    print(collections.Counter(t.evaluation.status.value for t in traces))
    print(f"FIB_BENCH_WALL_S={wall:.1f} traces={len(traces)}")
