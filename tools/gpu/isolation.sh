#!/usr/bin/env bash
# Isolation on the GPU: the toy zoo (segfault, hang, raise, input mutation, an out-of-bounds CUDA
# kernel next to correct Python and CUDA solutions), then the out-of-bounds kernel under
# compute-sanitizer memcheck. Logs in $OUT. Carry .whl.
set -uo pipefail
source tools/gpu/env.sh
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
python3 tools/gpu/make_smoke_data.py /tmp/g >/dev/null
echo "=== toy isolation"
timeout 200 $P --fib-dataset=/tmp/g/ds_toy --fib-kernels=/tmp/g/ds_toy/k --fib-timeout 15 -m correctness \
  -q -rA > $OUT/toy.log 2>&1; echo "rc=$?"
grep -E "^(PASSED|FAILED|ERROR)|passed|failed" $OUT/toy.log | cut -c1-220 | tail -30
echo "=== sanitizer"
timeout 150 $P --fib-dataset=/tmp/g/ds_toy --fib-kernels=/tmp/g/ds_toy/k -k "g_cuda_oob and correctness" -x \
  --fib-sanitizer memcheck -q -rA > $OUT/sanitizer.log 2>&1; echo "rc=$?"
grep -E "Invalid __global__|ERROR SUMMARY|SANITIZER|passed|failed" $OUT/sanitizer.log | head -6
