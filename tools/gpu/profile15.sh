#!/usr/bin/env bash
# Issue 15: where a warm session's time goes, on one GPU. The 6 CUDA solutions of the public
# rmsnorm_h2048/h4096 (bash tools/gpu/shared_subset.sh; carry .whl and .gpu_data), all their
# workloads ("full") and 3 per definition ("small", tools/gpu/perf_dataset.py):
#   cold full (fills the build cache), then warm full three times: plain, with every worker call
#   traced (PYTEST_FIB_TRACE_CALLS), and under cProfile (the controller); warm small;
#   flashinfer-bench 0.1.2 cold and warm on small, its log lines stamped.
# Logs, traces and profiles in $OUT/profile15.tar.gz.
set -uo pipefail
source tools/gpu/env.sh
R=/tmp/profile15; rm -rf $R; mkdir -p $R
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
DEFS=(rmsnorm_h2048 rmsnorm_h4096)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
pack() { tar -czf $OUT/profile15.tar.gz -C /tmp profile15 --exclude=c_ours --exclude=c_fib --exclude=t_fib; }
python3 tools/gpu/perf_dataset.py .gpu_data/shared $R/full all "${DEFS[@]}" || exit 1
python3 tools/gpu/perf_dataset.py .gpu_data/shared $R/small 3 "${DEFS[@]}" || exit 1
walled() { local n=$1 t0=$EPOCHREALTIME; shift; "$@"; echo "$n $(python3 -c "print(round($EPOCHREALTIME - $t0, 1))")" | tee -a $R/walls; }
ours() { local n=$1 limit=$2 ds=$3; shift 3
  walled $n timeout $limit "$@" -p pytest_fib.plugin -p no:cacheprovider -p no:randomly \
    --fib-dataset=$R/$ds --fib-solutions=dataset --fib-cache-dir=$R/c_ours \
    -m "correctness or timing" --fib-warmup=10 --fib-iterations=50 --fib-trials=3 --fib-seed=3 \
    -rfE --durations=0 > $R/$n.log 2>&1
  echo "$n: $(grep 'build cache' $R/$n.log) | $(tail -1 $R/$n.log)"; pack; }
fib() { local n=$1 limit=$2
  (cd /tmp && FIB_CACHE_PATH=$R/c_fib TRITON_CACHE_DIR=$R/t_fib walled $n timeout $limit \
    python3 $OLDPWD/tools/gpu/fib_bench_baseline.py $R/small "${DEFS[@]}" > $R/$n.log 2>&1)
  echo "$n: $(grep -c 'ms Solution' $R/$n.log) solution lines | $(tail -2 $R/$n.log | tr '\n' ' ')"; pack; }

ours cold_full 130 full python3 -m pytest
ours warm_full 60 full python3 -m pytest
PYTEST_FIB_TRACE_CALLS=$R/trace_full.tsv ours warm_full_traced 60 full python3 -m pytest
ours warm_full_cprofile 90 full python3 -m cProfile -o $R/controller.prof -m pytest
PYTEST_FIB_TRACE_CALLS=$R/trace_small.tsv ours warm_small 60 small python3 -m pytest
fib fib_cold_small 140
fib fib_warm_small 100
python3 - $R <<'PY'
import collections, pstats, sys
from pathlib import Path
r = Path(sys.argv[1])
for name in ("trace_full.tsv", "trace_small.tsv"):
    f = r / name
    if not f.exists():
        continue
    agg = collections.defaultdict(lambda: [0, 0.0])
    for line in f.read_text().splitlines():
        op, s, *_ = line.split("\t")
        agg[op][0] += 1; agg[op][1] += float(s)
    print(name, {k: (n, round(t, 2)) for k, (n, t) in sorted(agg.items())},
          "total", round(sum(t for _, t in agg.values()), 2))
if (r / "controller.prof").exists():
    st = pstats.Stats(str(r / "controller.prof"))
    st.sort_stats("cumulative").print_stats(45)
PY
pack
