#!/usr/bin/env bash
# GPU validation run 3 (final): timing vs CUPTI/ncu for the shipped rmsnorm kernel, two sessions;
# self-test and sanitizer; the public dataset's rmsnorm solutions on the GPU; session wall time vs
# flashinfer-bench. Call from the repo root through the device tool with .whl and .gpu_data carried.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader | tee $OUT/gpu.txt
echo "=== 1. references (CUPTI, ncu) for kernels/rmsnorm_h4096/rmsnorm_h4096_triton"
timeout 150 python3 tools/gpu/validate_timing.py kernels/rmsnorm_h4096/rmsnorm_h4096_triton/solution/triton/kernel.py $OUT/refs.json --ncu > $OUT/refs.log 2>&1; tail -3 $OUT/refs.log
echo "=== 2. pytest-fib, two sessions back to back"
for r in 1 2; do timeout 120 $P -k "rmsnorm_h4096_triton and not fused" -m timing --fib-seed=7 -q --benchmark-json=$OUT/k$r.json > $OUT/k$r.log 2>&1; echo "session $r rc=$?"; done
python3 tools/gpu/compare.py $OUT 2>&1 | tee $OUT/compare.txt
echo "=== 3. self-test and sanitizer"
timeout 120 $P --fib-selftest -q > $OUT/selftest.log 2>&1; echo "selftest rc=$?"; grep -E "caught by|passed|failed" $OUT/selftest.log | tail -12
python3 tools/gpu/make_smoke_data.py /tmp/g >/dev/null
timeout 90 $P --fib-dataset=/tmp/g/ds_toy --fib-kernels=/tmp/g/ds_toy/k -k "g_cuda_oob and correctness" -x --fib-sanitizer memcheck -q > $OUT/sanitizer.log 2>&1; echo "sanitizer rc=$?"
grep -E "Invalid __global__|ERROR SUMMARY|SANITIZER|passed|failed" $OUT/sanitizer.log | head -6
echo "=== 4. public dataset rmsnorm solutions on the GPU (correctness), traces for comparison"
timeout 200 $P --fib-dataset=.gpu_data/shared --fib-solutions=dataset -m correctness -n 8 -q --fib-seed=1 --fib-traces=$OUT/shared --junitxml=$OUT/shared.xml > $OUT/shared.log 2>&1; echo "shared rc=$?"; tail -2 $OUT/shared.log
echo "=== 5. session wall time vs flashinfer-bench (rmsnorm_h4096 + fused_add_rmsnorm_h4096)"
mkdir -p /tmp/fibds && cp -r pytest_fib/data/default/* /tmp/fibds/
/usr/bin/time -f "FIB_PYTEST_WALL_S=%e" timeout 150 $P -k "rmsnorm_h4096" -m "correctness or timing" --fib-warmup 10 --fib-iterations 50 --fib-trials 3 --fib-pack=/tmp/fibds/solutions/pytest-fib -q > $OUT/wall_ours.log 2>&1; tail -2 $OUT/wall_ours.log
(cd /tmp && /usr/bin/time -f "FIB_BENCH_WALL_S=%e" timeout 150 python3 $OLDPWD/tools/gpu/fib_bench_baseline.py /tmp/fibds rmsnorm_h4096 fused_add_rmsnorm_h4096 > $OUT/wall_fib.log 2>&1); tail -4 $OUT/wall_fib.log
