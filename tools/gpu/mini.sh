#!/usr/bin/env bash
# The mini-dataset (every op family, tests/minidata) on the GPU: correctness checked against its
# expect.json, then the timing items of the Python solutions of the blob families. Carry .whl.
# Logs in $OUT. (families.sh step 1, alone.)
set -uo pipefail
REPO=$PWD
source tools/gpu/env.sh
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
R=/tmp/mini; python3 -m tests.minidata $R > /dev/null
mkdir -p /tmp/run && cd /tmp/run
S=$(date +%s)
timeout 200 $P --fib-dataset=$R --fib-solutions=dataset -m correctness --fib-seed=0 -q \
  --junitxml=$OUT/mini_junit.xml > $OUT/mini.log 2>&1; echo "rc=$? wall=$(( $(date +%s) - S ))s"
tail -1 $OUT/mini.log
python3 $REPO/tools/gpu/expect_check.py $OUT/mini_junit.xml $R/expect.json > $OUT/mini_check.txt 2>&1
tail -3 $OUT/mini_check.txt
S=$(date +%s)
timeout 150 $P --fib-dataset=$R --fib-solutions=dataset -m timing --fib-seed=0 -q \
  -k "_py and (gqa or mla or dsa or moe or gdn or topk or sampling)" --fib-iterations=20 \
  > $OUT/mini_timing.log 2>&1; echo "rc=$? wall=$(( $(date +%s) - S ))s"
tail -1 $OUT/mini_timing.log
