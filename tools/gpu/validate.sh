#!/usr/bin/env bash
# GPU validation run 2: shipped kernels (correctness, timing twice), timing vs ncu/CUPTI, selftest,
# sanitizer, session wall time vs flashinfer-bench. Call from the repo root via the device tool.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee $OUT/gpu.txt
echo "=== kernels: correctness + timing, two sessions"
for r in 1 2; do
  /usr/bin/time -f "SESSION_WALL_S=%e" $P -k "rmsnorm or gdn" -q --fib-seed=7 --benchmark-json=$OUT/k$r.json --fib-report=$OUT/rep$r -p no:randomly 2>&1 | grep -v "^timing\|^---\|^Legend\|Outliers\|OPS:\|^Name\|^$" | tail -25
done
cp $OUT/rep1/summary.md $OUT/summary1.md 2>/dev/null
echo "=== references for the shipped rmsnorm Triton kernel (CUPTI, ncu)"
python3 tools/gpu/validate_timing.py kernels/rmsnorm_h4096/rmsnorm_h4096_triton/solution/triton/kernel.py $OUT/refs.json --ncu 2>&1 | tail -16
python3 tools/gpu/compare.py $OUT 2>&1 | tee $OUT/compare.txt
echo "=== session wall time vs flashinfer-bench (rmsnorm_h4096 + fused_add_rmsnorm_h4096, same solutions, warmup 10, iterations 50, 3 trials)"
mkdir -p /tmp/fibds && cp -r pytest_fib/data/default/* /tmp/fibds/
$P -k "rmsnorm_h4096" --fib-pack=/tmp/fibds/solutions/pytest-fib -m correctness -q >/dev/null 2>&1
ls /tmp/fibds/solutions/pytest-fib | head
/usr/bin/time -f "FIB_PYTEST_WALL_S=%e" $P -k "rmsnorm_h4096" -m "correctness or timing" --fib-warmup 10 --fib-iterations 50 --fib-trials 3 -q -p no:randomly 2>&1 | tail -2
(cd /tmp && timeout 400 python3 $OLDPWD/tools/gpu/fib_bench_baseline.py /tmp/fibds rmsnorm_h4096 fused_add_rmsnorm_h4096 2>&1 | tail -4)
echo "=== selftest + sanitizer"
python3 tools/gpu/make_smoke_data.py /tmp/g >/dev/null
$P --fib-selftest -q 2>&1 | grep -E "caught by|passed|failed|SELFTEST" | head -20 | tee $OUT/selftest.txt
$P --fib-dataset=/tmp/g/ds_toy --fib-kernels=/tmp/g/ds_toy/k -k "g_cuda_oob and correctness" -x --fib-sanitizer memcheck -q 2>&1 | grep -E "Invalid|ERROR SUMMARY|SANITIZER|Address|passed|failed" | head -12 | tee $OUT/sanitizer.txt
