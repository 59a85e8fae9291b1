#!/usr/bin/env bash
# A short GPU check after a large change (one device call, ~4 min; carry .whl): the self-test
# (every exploit caught), the embedded kernels correctness + timing, one --fib-ncu item.
set -uo pipefail
source tools/gpu/env.sh
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
echo "=== selftest"
timeout 200 $P --fib-selftest -q > $OUT/selftest.log 2>&1; echo "rc=$?"; tail -1 $OUT/selftest.log
echo "=== kernels/ (embedded dataset), correctness and timing"
timeout 200 $P -q --fib-report=$OUT/report --junitxml=$OUT/main.xml > $OUT/main.log 2>&1; echo "rc=$?"
grep -E "^(FAILED|ERROR)|passed|failed|WARNING" $OUT/main.log | cut -c1-200 | tail -8
sed -n '/definition .*solution/,/^$/p' $OUT/main.log | head -14
echo "=== --fib-ncu"
timeout 100 $P -k "rmsnorm_h4096_triton and not fused and batch_size:7-" -m timing --fib-ncu -q -rA \
  > $OUT/ncu.log 2>&1; echo "rc=$?"
sed -n '/pytest-fib ncu report/,/full report/p' $OUT/ncu.log | cut -c1-160
