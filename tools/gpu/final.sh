#!/usr/bin/env bash
# GPU validation: timing vs CUPTI/ncu for the shipped rmsnorm kernel, two sessions; the sanitizer
# on an out-of-bounds kernel. (The self-test, the public dataset and the wall time against
# flashinfer-bench have their own scripts: selftest.sh, shared.sh, walltime.sh.) Call from the repo
# root through the device tool with .whl carried.
set -uo pipefail
source tools/gpu/env.sh
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader | tee $OUT/gpu.txt
echo "=== 1. references (CUPTI, ncu) for kernels/rmsnorm_h4096/rmsnorm_h4096_triton"
timeout 150 python3 tools/gpu/validate_timing.py kernels/rmsnorm_h4096/rmsnorm_h4096_triton/solution/triton/kernel.py $OUT/refs.json --ncu > $OUT/refs.log 2>&1; tail -3 $OUT/refs.log
echo "=== 2. pytest-fib, two sessions back to back"
for r in 1 2; do timeout 120 $P -k "rmsnorm_h4096_triton and not fused" -m timing --fib-seed=7 -q --benchmark-json=$OUT/k$r.json > $OUT/k$r.log 2>&1; echo "session $r rc=$?"; done
python3 tools/gpu/compare.py $OUT 2>&1 | tee $OUT/compare.txt
echo "=== 3. sanitizer"
python3 tools/gpu/make_smoke_data.py /tmp/g >/dev/null
timeout 90 $P --fib-dataset=/tmp/g/ds_toy --fib-kernels=/tmp/g/ds_toy/k -k "g_cuda_oob and correctness" -x --fib-sanitizer memcheck -q > $OUT/sanitizer.log 2>&1; echo "sanitizer rc=$?"
grep -E "Invalid __global__|ERROR SUMMARY|SANITIZER|passed|failed" $OUT/sanitizer.log | head -6
