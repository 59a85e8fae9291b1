#!/usr/bin/env bash
# GPU smoke run of the harness (call through the device tool from the repo root).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv | tee $OUT/gpu.txt
python3 tools/gpu/make_smoke_data.py /tmp/g >/dev/null
echo "=== toy isolation"; $P --fib-dataset=/tmp/g/ds_toy --fib-kernels=/tmp/g/ds_toy/k --fib-timeout 15 -m correctness -q -rA 2>&1 | tail -45 | tee $OUT/toy.txt
echo "=== sanitizer"; $P --fib-dataset=/tmp/g/ds_toy --fib-kernels=/tmp/g/ds_toy/k -k "g_cuda_oob and correctness" -x --fib-sanitizer memcheck -q -rA 2>&1 | grep -E "Invalid|ERROR SUMMARY|SANITIZER|passed|failed" | head -20 | tee $OUT/sanitizer.txt
echo "=== rms timing x2"; for r in 1 2; do $P --fib-dataset=/tmp/g/ds_rms --fib-kernels=/tmp/g/ds_rms/k -m "correctness or timing" -q --benchmark-json=$OUT/rms$r.json 2>&1 | tail -12; done
echo "=== references"; python3 tools/gpu/validate_timing.py /tmp/g/ds_rms/k/plain_triton/solution/triton/kernel.py $OUT/refs.json --ncu 2>&1 | tail -30
python3 - <<'PY'
import json, os
out = os.environ["OUT"]
refs = json.load(open(f"{out}/refs.json"))
runs = [json.load(open(f"{out}/rms{r}.json")) for r in (1, 2)]
def med(run):
    return {b["extra_info"]["axes"]["batch_size"]: b["stats"]["median"] * 1e6 for b in run["benchmarks"] if b["extra_info"]["solution"] == "plain_triton"}
m1, m2 = med(runs[0]), med(runs[1])
print(f"{'batch':>6} {'fib us':>8} {'fib2 us':>8} {'cupti':>8} {'ncu':>8} {'run2/run1':>9}")
for b in sorted(m1):
    c = refs["cupti_us"].get(str(b)); n = refs.get("ncu_us", {}).get(str(b))
    print(f"{b:>6} {m1[b]:8.2f} {m2.get(b, 0):8.2f} {c or 0:8.2f} {n or 0:8.2f} {m2.get(b, 0) / m1[b]:9.3f}")
PY
echo "=== selftest"; mkdir -p /tmp/g/sel/definitions/rmsnorm /tmp/g/sel/workloads/rmsnorm; cp /tmp/g/ds_rms/definitions/rmsnorm/* /tmp/g/sel/definitions/rmsnorm/; head -3 /tmp/g/ds_rms/workloads/rmsnorm/*.jsonl > /tmp/g/sel/workloads/rmsnorm/rmsnorm_h4096.jsonl
$P --fib-dataset=/tmp/g/sel --fib-selftest -q 2>&1 | grep -v "^timing\|^---\|Legend\|Outliers\|OPS\|^Name\|^$" | tail -22 | tee $OUT/selftest.txt
