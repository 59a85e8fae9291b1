#!/usr/bin/env bash
# Issue #2 on the GPU: the public dataset's rmsnorm and gemm selection (bash tools/gpu/shared_subset.sh
# copies it into .gpu_data/shared; carry .whl and .gpu_data), correctness items, -n 15 on one GPU
# (timing under that contention would mean nothing). Every finished item is an fsynced trace line,
# so a cut run still reports; compare with the dataset's own traces with
# tools/gpu/vs_dataset_traces.py. Results in $OUT/shared.tar.gz.
set -uo pipefail
source tools/gpu/env.sh
R=/tmp/shared; mkdir -p $R
pack() { tar -czf $OUT/shared.tar.gz -C /tmp shared; }
timeout ${FIB_SHARED_TIMEOUT:-480} python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly \
  --fib-dataset=.gpu_data/shared --fib-solutions=dataset -k "rmsnorm or gemm" -m correctness -n 15 \
  -q -rfE --fib-seed=1 --fib-traces=$R/traces --junitxml=$R/junit.xml > $R/log 2>&1
echo "rc=$?" >> $R/log
tail -3 $R/log
pack
