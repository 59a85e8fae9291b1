#!/usr/bin/env bash
# Issue #3: wall time of a pytest-fib session against flashinfer-bench 0.1.2's Benchmark over the
# same solutions (the shipped rmsnorm_h4096 and fused_add_rmsnorm_h4096 kernels, packed with
# --fib-pack), the same workloads and iteration counts (warm-up 10, 50 timed, 3 trials). Both
# start cold: fresh FIB_CACHE_PATH and TRITON_CACHE_DIR, so both compile the CUDA and Triton
# kernels. Then both again with warm caches, and a warm pytest-fib session under cProfile
# (controller and workers) to show where the time goes. Python bytecode is compiled up front for
# both (tools/gpu/env.sh). Results in $OUT/walltime.tar.gz. Carry .whl. FIB_NO_PROFILE=1 skips the
# profiled session.
set -uo pipefail
source tools/gpu/env.sh
R=/tmp/walltime; mkdir -p $R/prof
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
SEL=(-k rmsnorm_h4096 -m "correctness or timing" --fib-warmup=10 --fib-iterations=50 --fib-trials=3 --fib-seed=3)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > $R/gpu.txt
walled() { local n=$1 t0=$EPOCHREALTIME; shift; "$@"; echo "$n=$(python3 -c "print(round($EPOCHREALTIME - $t0, 1))")"; }
pack() { tar -czf $OUT/walltime.tar.gz -C /tmp walltime; }  # after each part: a cut call keeps the rest
rm -rf /tmp/fibds && mkdir -p /tmp/fibds && cp -r pytest_fib/data/default/* /tmp/fibds/

# ours NAME LOG [pytest args...] / fib NAME LOG: one timed session each, with its own caches.
ours() { local n=$1 log=$2; shift 2
  FIB_CACHE_PATH=/tmp/c_ours TRITON_CACHE_DIR=/tmp/t_ours walled $n \
    timeout 150 $P "${SEL[@]}" --durations=60 -q "$@" > $R/$log 2>&1; tail -2 $R/$log; pack; }
fib() { local n=$1 log=$2
  (cd /tmp && FIB_CACHE_PATH=/tmp/c_fib TRITON_CACHE_DIR=/tmp/t_fib walled $n timeout 120 \
    python3 $OLDPWD/tools/gpu/fib_bench_baseline.py /tmp/fibds rmsnorm_h4096 fused_add_rmsnorm_h4096 \
    > $R/$log 2>&1); tail -4 $R/$log; pack; }

echo "== cold caches"
ours FIB_PYTEST_WALL_S ours.log --fib-pack=/tmp/fibds/solutions/pytest-fib --benchmark-json=$R/ours.json
fib FIB_BENCH_WALL_S fib.log
echo "== warm caches"
ours FIB_PYTEST_WARM_WALL_S warm.log
fib FIB_BENCH_WARM_WALL_S fib_warm.log

[ "${FIB_NO_PROFILE:-0}" = 1 ] && exit 0  # FIB_NO_PROFILE=1: the four timed sessions only
echo "== pytest-fib, warm caches, profiled"
FIB_CACHE_PATH=/tmp/c_ours TRITON_CACHE_DIR=/tmp/t_ours PYTEST_FIB_PROFILE_WORKERS=$R/prof \
  walled FIB_PYTEST_WARM_PROFILED_WALL_S timeout 110 python3 -m cProfile -o $R/prof/controller.prof \
  -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly "${SEL[@]}" --durations=60 -q > $R/warm_prof.log 2>&1
tail -2 $R/warm_prof.log; pack
