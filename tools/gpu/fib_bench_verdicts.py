"""flashinfer-bench 0.1.2's own verdicts on a dataset folder, for the parity comparison in
docs/verdicts.md: one JSON line per trace (definition, solution, workload uuid, status).
Usage: python fib_bench_verdicts.py DATASET OUT.jsonl DEF [DEF ...]"""
import json
import sys
import time

if __name__ == "__main__":  # flashinfer-bench's runner spawns processes: keep this guarded
    from flashinfer_bench import Benchmark, BenchmarkConfig, TraceSet

    root, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    start = time.perf_counter()
    ts = TraceSet.from_path(root)
    # Verdicts only: few timed runs (flashinfer-bench always times a passing solution).
    with open(out, "w") as fh:
        for name in names:  # one definition at a time: a cut run keeps what finished
            # Verdicts only: few timed runs (flashinfer-bench always times a passing solution).
            cfg = BenchmarkConfig(warmup_runs=1, iterations=3, num_trials=3, definitions=[name])
            bench = Benchmark(ts, cfg)
            result = bench.run_all(dump_traces=False)
            bench.close()
            for traces in result.traces.values():
                for t in traces:
                    if t.evaluation is None:
                        continue
                    c = t.evaluation.correctness
                    fh.write(json.dumps({
                        "definition": t.definition, "solution": t.solution,
                        "workload": t.workload.uuid, "status": t.evaluation.status.value,
                        "max_abs": c.max_absolute_error if c else None,
                        "log": (t.evaluation.log or "")[-400:]}) + "\n")
            fh.flush()
            print(f"{name}: done at {time.perf_counter() - start:.1f} s", flush=True)
    print(f"FIB_BENCH_WALL_S={time.perf_counter() - start:.1f}")
