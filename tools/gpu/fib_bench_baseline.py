"""Wall time of flashinfer-bench 0.1.2's own Benchmark over the given definitions of a dataset
folder (its solutions/ holds our kernels, packed with --fib-pack), for the session-time comparison
in docs/timing.md. Usage: python fib_bench_baseline.py DATASET DEF [DEF ...]"""
import sys
import time

if __name__ == "__main__":  # flashinfer-bench's runner spawns processes: keep this guarded
    from flashinfer_bench import Benchmark, BenchmarkConfig, TraceSet

    root, names = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    ts = TraceSet.from_path(root)
    cfg = BenchmarkConfig(warmup_runs=10, iterations=50, num_trials=3, definitions=names)
    bench = Benchmark(ts, cfg)
    result = bench.run_all(dump_traces=False)
    bench.close()
    wall = time.perf_counter() - start
    n = sum(len(v) for v in result.traces.values()) if hasattr(result, "traces") else -1
    print(f"FIB_BENCH_WALL_S={wall:.1f} traces={n}")
