#!/usr/bin/env bash
# Issue 15 (items 1-3) on one GPU: the persistent build cache and the build pool. Six CUDA
# (torch-binding) solutions of the public dataset (rmsnorm_h2048 and rmsnorm_h4096, all the
# CUDA ones: bash tools/gpu/shared_subset.sh copies them into .gpu_data/shared; carry .whl and
# .gpu_data) in a dataset of their own, run by pytest-fib and by flashinfer-bench 0.1.2's
# Benchmark on the same pairs (warm-up 10, 50 timed, 3 trials; tools/gpu/fib_bench_baseline.py):
#   cold   fresh caches for both (pytest-fib: --fib-cache-dir; flashinfer-bench: FIB_CACHE_PATH)
#   warm   the same again: pytest-fib should compile nothing ("6 of 6 solutions cached")
#   edit   one kernel's source edited (a comment), pytest-fib again: only that one rebuilds
# Prints a table; logs in $OUT/perf15.tar.gz. About 8 minutes at most (each run has a timeout).
set -uo pipefail
source tools/gpu/env.sh
R=/tmp/perf15; rm -rf $R; mkdir -p $R
P="python3 -m pytest -p pytest_fib.plugin -p no:cacheprovider -p no:randomly"
DEFS=(rmsnorm_h2048 rmsnorm_h4096)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
pack() { tar -czf $OUT/perf15.tar.gz -C /tmp perf15; }

# The dataset: the two definitions, their workloads, and only their CUDA solutions.
python3 - .gpu_data/shared $R/ds "${DEFS[@]}" <<'EOF' || exit 1
import json, shutil, sys
from pathlib import Path
src, dst, names = Path(sys.argv[1]), Path(sys.argv[2]), set(sys.argv[3:])
for sub in ("definitions", "workloads"):
    for f in (src / sub).rglob("*"):
        if f.is_file() and f.stem in names:
            (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst / f.relative_to(src))
n = 0
for f in sorted((src / "solutions").rglob("*.json")):
    raw = json.loads(f.read_text())
    if raw.get("definition") in names and raw["spec"]["language"] == "cuda":
        (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dst / f.relative_to(src)); n += 1
print(f"{n} CUDA solutions for {sorted(names)}")
EOF

walled() { local n=$1 t0=$EPOCHREALTIME; shift; "$@"; echo "$n $(python3 -c "print(round($EPOCHREALTIME - $t0, 1))")" >> $R/walls; }
ours() { local n=$1 limit=$2; shift 2
  walled $n timeout $limit $P --fib-dataset=$R/ds --fib-solutions=dataset --fib-cache-dir=$R/c_ours \
    -m "correctness or timing" --fib-warmup=10 --fib-iterations=50 --fib-trials=3 --fib-seed=3 \
    -rfE "$@" > $R/$n.log 2>&1
  echo "$n: $(grep 'build cache' $R/$n.log) | $(tail -1 $R/$n.log)"; pack; }
fib() { local n=$1 limit=$2
  (cd /tmp && FIB_CACHE_PATH=$R/c_fib TRITON_CACHE_DIR=$R/t_fib walled $n timeout $limit \
    python3 $OLDPWD/tools/gpu/fib_bench_baseline.py $R/ds "${DEFS[@]}" > $R/$n.log 2>&1)
  echo "$n: $(tail -2 $R/$n.log | tr '\n' ' ')"; pack; }
entries() { find $R/c_ours/builds -name meta.json 2>/dev/null | wc -l; }
newest() { find $R/c_ours/builds -name meta.json -newer $1 2>/dev/null | wc -l; }

touch $R/t0; ours ours_cold 140; echo "ours_cold_builds $(newest $R/t0)" >> $R/walls
touch $R/t1; ours ours_warm 75; echo "ours_warm_builds $(newest $R/t1)" >> $R/walls
python3 - $R/ds <<'EOF'
import json, sys
from pathlib import Path
f = sorted(Path(sys.argv[1], "solutions").rglob("*.json"))[0]
raw = json.loads(f.read_text())
raw["sources"][0]["content"] += "\n// edited by tools/gpu/perf15.sh\n"
f.write_text(json.dumps(raw, indent=2))
print("edited", raw["name"], raw["sources"][0]["path"])
EOF
touch $R/t2; ours ours_edit 90; echo "ours_edit_builds $(newest $R/t2)" >> $R/walls
fib fib_cold 100
fib fib_warm 80

python3 - $R <<'EOF'
import sys
from pathlib import Path
r = Path(sys.argv[1])
w = dict(line.split() for line in (r / "walls").read_text().splitlines())
def tail(name):
    try:
        lines = (r / f"{name}.log").read_text().splitlines()
    except OSError:
        return "?"
    return next((l for l in reversed(lines) if "passed" in l or "failed" in l or "FIB_BENCH" in l), lines[-1] if lines else "")[:70]
print(f"GPU: {(r / 'gpu.txt').read_text().strip()}")
print(f"{'run':<10} {'pytest-fib s':>12} {'built':>6} {'flashinfer-bench s':>18}   pytest-fib result")
for k in ("cold", "warm", "edit"):
    print(f"{k:<10} {w.get('ours_' + k, '-'):>12} {w.get('ours_' + k + '_builds', '-'):>6} "
          f"{w.get('fib_' + k, '-'):>18}   {tail('ours_' + k)}")
EOF
pack
