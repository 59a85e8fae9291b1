#!/usr/bin/env bash
# Issue 19 on the GPU, one device call (carry .whl). Logs and reports in $OUT:
#  1. --fib-ncu on one timing item, a Triton and a CUDA solution: wall time and the table;
#     the raw CSV read back from one report (the fixture format of tests/test_ncu.py);
#  2. --fib-sanitizer memcheck and racecheck on an honest CUDA kernel (0 errors expected) and on
#     an out-of-bounds one (errors found).
set -uo pipefail
source tools/gpu/env.sh
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
$NCU --version | tail -1
echo "=== 1 --fib-ncu"
for lang in triton cuda; do
  S=$(date +%s.%N)
  timeout 240 $P -k "rmsnorm_h4096_$lang and not fused and batch_size:7-" -m timing --fib-ncu \
    --fib-report=$OUT/report_$lang -q -rA > $OUT/ncu_$lang.log 2>&1
  rc=$?
  echo "$lang: rc=$rc wall=$(python3 -c "import time; print(f'{time.time() - $S:.1f}')") s"
  sed -n '/pytest-fib ncu report/,/full report/p' $OUT/ncu_$lang.log | cut -c1-200
  grep -E "passed|failed|error" $OUT/ncu_$lang.log | tail -2
done
rep=$(ls $OUT/report_triton/ncu/*.ncu-rep 2>/dev/null | head -1)
[ -n "$rep" ] && $NCU --import "$rep" --csv --page raw --print-units base \
  --metrics gpu__time_duration.sum,dram__bytes.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed \
  > $OUT/raw.csv 2>&1; head -c 1500 $OUT/raw.csv; echo

echo "=== 2 --fib-sanitizer"
python3 tools/gpu/make_smoke_data.py /tmp/g > /dev/null
for tool in memcheck racecheck; do
  S=$(date +%s.%N)
  timeout 200 $P -k "rmsnorm_h4096_cuda and not fused and batch_size:7-" -m correctness \
    --fib-sanitizer=$tool -q -rA > $OUT/san_honest_$tool.log 2>&1
  echo "honest $tool: rc=$? wall=$(python3 -c "import time; print(f'{time.time() - $S:.1f}')") s; $(grep -m1 -o 'ERROR SUMMARY: [0-9]* error' $OUT/san_honest_$tool.log | head -1 || true)"
  grep -E "passed|failed" $OUT/san_honest_$tool.log | tail -1
  S=$(date +%s.%N)
  timeout 200 $P --fib-dataset=/tmp/g/ds_toy --fib-kernels=/tmp/g/ds_toy/k -k "g_cuda_oob" \
    -m correctness --fib-sanitizer=$tool -q -rA > $OUT/san_oob_$tool.log 2>&1
  echo "out-of-bounds $tool: rc=$? wall=$(python3 -c "import time; print(f'{time.time() - $S:.1f}')") s"
  grep -E "SANITIZER|Invalid __global__|ERROR SUMMARY" $OUT/san_oob_$tool.log | head -3 | cut -c1-200
  grep -E "passed|failed" $OUT/san_oob_$tool.log | tail -1
done
