#!/usr/bin/env bash
# Issue 13 on the GPU, one device call. Carry .whl. Logs in $OUT.
#  1. the self-test: every exploit (unlisted_helper and shadowed_method included) caught;
#  2. an honest Triton kernel named spin_* timed with CUPTI against the same kernel named otherwise;
#  3. the switch cost of a new solution's process: forks (the default) and exec'd interpreters;
#  4. the hostile corpus and the isolation tests of tests/, on cuda, in both child modes.
set -uo pipefail
source tools/gpu/env.sh
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
STEPS="${STEPS:-1 2 3 4}"  # e.g. STEPS=4 runs only the tests
step() { [[ " $STEPS " == *" $1 "* ]]; }
if step 1; then
echo "=== 1 selftest"
timeout 300 $P --fib-selftest -q -rA > $OUT/selftest.log 2>&1; echo "rc=$?"
grep -iE "caught|exploit|passed|failed" $OUT/selftest.log | cut -c1-200 | tail -30
fi

if step 2; then
echo "=== 2 spin-named kernel"
K=/tmp/spin/kernels/rmsnorm_h4096; mkdir -p $K
for v in plain spin; do
  cp -r kernels/rmsnorm_h4096/rmsnorm_h4096_triton $K/$v
  sed -i "s/name = \"rmsnorm_h4096_triton\"/name = \"rmsnorm_$v\"/" $K/$v/config.toml
done
sed -i 's/_rmsnorm_kernel/spin_scale_kernel/g' $K/spin/solution/triton/kernel.py
grep -c spin_scale_kernel $K/spin/solution/triton/kernel.py
(cd /tmp/spin && timeout 400 $P -m timing --fib-report=$OUT/spin -q -rA \
   --benchmark-json=$OUT/spin.json > $OUT/spin.log 2>&1; echo "rc=$?")
grep -E "passed|failed|WARNING|CUDA events" $OUT/spin.log | tail -5
python3 - <<'PY'
import json, os, statistics
rows = json.load(open(os.environ["OUT"] + "/spin.json"))["benchmarks"]
by = {}
for b in rows:
    e = b["extra_info"]
    by.setdefault(e["workload_uuid"], {})[e["solution"]] = (e["latency_ms"] * 1e3, e["clock"])
ratios = []
for w, d in sorted(by.items()):
    (p, pc), (s, sc) = d["rmsnorm_plain"], d["rmsnorm_spin"]
    ratios.append(s / p)
    print(f"{w[:8]} plain {p:8.2f} us ({pc})  spin_* {s:8.2f} us ({sc})  ratio {s / p:.3f}")
print(f"spin/plain: median {statistics.median(ratios):.3f}, max |1-r| {max(abs(1 - r) for r in ratios):.3f}")
PY
fi

if step 3; then
echo "=== 3 switch cost"
for mode in auto 1; do
  PYTEST_FIB_EXEC_CHILDREN=$mode timeout 200 python3 tools/switch_cost.py 10 cuda 2>&1 | tail -2
done
fi

if step 4; then
echo "=== 4 hostile and isolation tests on cuda"
# the image has no installed pytest-fib (no entry point): the tests' own pytest runs load it so
FIB_TEST_DEVICE=cuda PYTEST_PLUGINS=pytest_fib.plugin timeout 500 python3 -m pytest -p no:cacheprovider -p no:randomly \
  tests/test_hostile_e2e.py tests/test_isolation_e2e.py -q > $OUT/hostile.log 2>&1; echo "rc=$?"
tail -15 $OUT/hostile.log | cut -c1-300
fi
