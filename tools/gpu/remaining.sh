#!/usr/bin/env bash
# The GPU checks still owed (see the last closing note): the public dataset's rmsnorm + gemm
# solutions on the GPU with outcome counts, the self-test on the GPU, and the session wall time
# against flashinfer-bench. Everything lands in one archive ($OUT/remaining.tar.gz) because the
# device tool brings back at most 8 files. Carry .whl and .gpu_data (the shared subset).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
R=/tmp/remaining; mkdir -p $R
(timeout 240 $P --fib-selftest -q -rA > $R/selftest.log 2>&1; echo "rc=$?" >> $R/selftest.log)
grep -E "caught by|passed|failed" $R/selftest.log | tail -14
(timeout 300 $P --fib-dataset=.gpu_data/shared --fib-solutions=dataset -m correctness -n 8 -q -rf --fib-seed=1 --fib-traces=$R/shared --junitxml=$R/shared.xml > $R/shared.log 2>&1; echo "rc=$?" >> $R/shared.log)
tail -3 $R/shared.log
mkdir -p /tmp/fibds && cp -r pytest_fib/data/default/* /tmp/fibds/
/usr/bin/time -f "FIB_PYTEST_WALL_S=%e" timeout 200 $P -k "rmsnorm_h4096" -m "correctness or timing" --fib-warmup 10 --fib-iterations 50 --fib-trials 3 --fib-pack=/tmp/fibds/solutions/pytest-fib -q > $R/wall_ours.log 2>&1; tail -2 $R/wall_ours.log
(cd /tmp && /usr/bin/time -f "FIB_BENCH_WALL_S=%e" timeout 300 python3 $OLDPWD/tools/gpu/fib_bench_baseline.py /tmp/fibds rmsnorm_h4096 fused_add_rmsnorm_h4096 > $R/wall_fib.log 2>&1); tail -3 $R/wall_fib.log
tar -czf $OUT/remaining.tar.gz -C /tmp remaining
