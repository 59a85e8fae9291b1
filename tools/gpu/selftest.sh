#!/usr/bin/env bash
# Issue #5 on the GPU: every self-test exploit caught by its intended check, the GPU-only ones
# (side stream) included. Log in $OUT/selftest.log. Carry .whl.
set -uo pipefail
source tools/gpu/env.sh
timeout 240 python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly --fib-selftest \
  -q -rA > $OUT/selftest.log 2>&1
echo "rc=$?" >> $OUT/selftest.log
grep -iE "caught|exploit|passed|failed" $OUT/selftest.log | tail -25
