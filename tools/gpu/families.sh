#!/usr/bin/env bash
# Issue 12 on the GPU, one device call (carry .whl and .gpu_data; bash tools/gpu/families_subset.sh
# first). Results in $OUT/families.tar.gz:
#  1. the mini-dataset (every op family) on the GPU: correctness, checked against expect.json;
#     then timing items of the blob families (timed re-checks of exact/integer and blob inputs);
#  2. the public blob families (mla/gqa/dsa/moe/gdn) and rmsnorm, correctness, -n 8, traces;
#  3. flashinfer-bench 0.1.2's own verdicts on the mla_paged items (in the background, meanwhile).
set -uo pipefail
REPO=$PWD
source tools/gpu/env.sh
R=/tmp/families; mkdir -p $R
pack() { tar -czf $OUT/families.tar.gz -C /tmp families; }
trap pack EXIT
PYTEST="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
(timeout 400 python3 tools/gpu/fib_bench_verdicts.py .gpu_data/public $R/fib_bench.jsonl \
   mla_paged_decode_h16_ckv512_kpe64_ps1 mla_paged_prefill_causal_h16_ckv512_kpe64_ps1 \
   > $R/fib_bench.log 2>&1; echo "rc=$?" >> $R/fib_bench.log) &
python3 -m tests.minidata $R/mini > /dev/null
S=$(date +%s)
mkdir -p /tmp/run && cd /tmp/run
timeout 120 $PYTEST --fib-dataset=$R/mini --fib-solutions=dataset -m correctness --fib-seed=0 -q \
  --junitxml=$R/mini_junit.xml > $R/mini.log 2>&1; echo "rc=$? wall=$(( $(date +%s) - S ))s" >> $R/mini.log
cd - > /dev/null
python3 $REPO/tools/gpu/expect_check.py $R/mini_junit.xml $R/mini/expect.json > $R/mini_check.txt 2>&1
tail -2 $R/mini.log; tail -1 $R/mini_check.txt
cd /tmp/run
timeout 90 $PYTEST --fib-dataset=$R/mini --fib-solutions=dataset -m timing --fib-seed=0 -q \
  -k "_py and (gqa or mla or dsa or moe or gdn or topk or sampling)" --fib-iterations=20 \
  --junitxml=$R/mini_timing.xml > $R/mini_timing.log 2>&1; echo "rc=$?" >> $R/mini_timing.log
tail -2 $R/mini_timing.log
S=$(date +%s)
timeout 260 $PYTEST --fib-dataset=$REPO/.gpu_data/public --fib-solutions=dataset \
  -k "mla or gqa or dsa or moe or gdn or rmsnorm" -m correctness -n 8 -q -rfEs --fib-seed=1 \
  --fib-traces=$R/traces --junitxml=$R/public_junit.xml > $R/public.log 2>&1
echo "rc=$? wall=$(( $(date +%s) - S ))s" >> $R/public.log
cd - > /dev/null
tail -2 $R/public.log
echo "bug-in-pytest-fib lines: $(grep -c 'a bug in pytest-fib' $R/public.log)"
wait
tail -2 $R/fib_bench.log
