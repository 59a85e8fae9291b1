#!/usr/bin/env bash
# Issue 15 on one GPU: pytest-fib's build cache and build pool against flashinfer-bench 0.1.2, on
# the 6 CUDA (torch-binding) solutions of the public rmsnorm_h2048 and rmsnorm_h4096 and all
# their workloads (bash tools/gpu/shared_subset.sh copies them into .gpu_data/shared; carry .whl
# and .gpu_data). Both run correctness and timing: warm-up 10, 50 timed, 3 trials.
#   bash tools/gpu/perf15.sh cold   one device call: pytest-fib cold, warm, one kernel edited,
#       --fib-clock=flashinfer-bench on the small set; then flashinfer-bench cold; its cache
#       comes back as $OUT/c_fib.tar.gz (copy it to .perf15/c_fib.tar.gz here)
#   bash tools/gpu/perf15.sh warm   a second call (carry .perf15 too): flashinfer-bench warm on
#       that cache, then pytest-fib warm again in the same call
#   bash tools/gpu/perf15.sh edit   pytest-fib only: cold, warm, one kernel edited (all items),
#       the same kernel edited again with -k selecting its items only; a timeline of each edited
#       session (its build's start and end, the edited solution's worker calls) in the output
# flashinfer-bench 0.1.2 rewrites every source before torch's cpp_extension.load, so ninja
# rebuilds every solution in every session: its warm run takes about as long as its cold one,
# and the two of them do not fit in one 10-minute call beside pytest-fib's runs.
set -uo pipefail
MODE=${1:-cold}
source tools/gpu/env.sh
R=/tmp/perf15; rm -rf $R; mkdir -p $R
DEFS=(rmsnorm_h2048 rmsnorm_h4096)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $R/gpu.txt
pack() { tar -czf $OUT/perf15-$MODE.tar.gz --exclude=c_ours --exclude=c_fib --exclude=t_fib -C /tmp perf15; }
python3 tools/gpu/perf_dataset.py .gpu_data/shared $R/ds all "${DEFS[@]}" || exit 1
python3 tools/gpu/perf_dataset.py .gpu_data/shared $R/small 3 "${DEFS[@]}" || exit 1

walled() { local n=$1 t0=$EPOCHREALTIME; shift; echo "$t0" > $R/$n.t0; "$@"; echo "$n $(python3 -c "print(round($EPOCHREALTIME - $t0, 1))")" | tee -a $R/walls; }
ours() { local n=$1 limit=$2 ds=$3; shift 3
  # SPY=1: under py-spy (its wheel in .whl), every thread's stacks, idle ones included
  local spy=(); [ "${SPY:-0}" = 1 ] && spy=(/tmp/site/bin/py-spy record --idle --threads --format raw -r 100 -o $R/$n.spy --)
  PYTEST_FIB_TRACE_CALLS=$R/$n.calls.tsv walled $n timeout $limit "${spy[@]}" python3 -m pytest \
    -p pytest_fib.plugin -p no:cacheprovider -p no:randomly --fib-dataset=$R/$ds \
    --fib-solutions=dataset --fib-cache-dir=$R/c_ours -m "correctness or timing" \
    --fib-warmup=10 --fib-iterations=50 --fib-trials=3 --fib-seed=3 -rfE --durations=15 \
    --benchmark-json=$R/$n.bench.json "$@" > $R/$n.log 2>&1
  echo "$n: $(grep 'build cache' $R/$n.log) | $(tail -1 $R/$n.log)"; pack; }
fib() { local n=$1 limit=$2
  (cd /tmp && FIB_CACHE_PATH=$R/c_fib TRITON_CACHE_DIR=$R/t_fib walled $n timeout $limit \
    python3 $OLDPWD/tools/gpu/fib_bench_baseline.py $R/ds "${DEFS[@]}" > $R/$n.log 2>&1)
  echo "$n: $(grep -c 'ms Solution' $R/$n.log) solution lines | $(grep FIB_BENCH $R/$n.log)"; pack; }
edit() { python3 - $R/ds <<'PY'
import json, sys, time
from pathlib import Path
f = sorted(Path(sys.argv[1], "solutions").rglob("*.json"))[0]
raw = json.loads(f.read_text())
raw["sources"][0]["content"] += f"\n// edited by tools/gpu/perf15.sh at {time.time()}\n"
f.write_text(json.dumps(raw, indent=2))
print("edited", raw["name"], raw["sources"][0]["path"])
Path(sys.argv[1], "..", "edited").write_text(raw["name"])
PY
}
timeline() {  # where an edited session's time went, in seconds from its start
  python3 - $R $1 <<'PY'
import json, sys
from pathlib import Path
r, n = Path(sys.argv[1]), sys.argv[2]
t0, name = float((r / f"{n}.t0").read_text()), (r / "edited").read_text()
metas = [json.loads(m.read_text()) for m in (r / "c_ours" / "builds").rglob("meta.json")]
meta = max(metas, key=lambda m: m.get("started", 0))
calls = [line.split("\t") for line in (r / f"{n}.calls.tsv").read_text().splitlines()]
mine = [c for c in calls if c[2] == name]
others = [c for c in calls if c[2] != name]
end = lambda c: float(c[4]) - t0
print(f"{n}: build of {name} from {meta['started'] - t0:.1f} s to "
      f"{meta['started'] + meta['seconds'] - t0:.1f} s ({meta['seconds']} s); its first call "
      f"ended at {end(mine[0]):.1f} s (after {float(mine[0][1]):.2f} s), last at "
      f"{end(mine[-1]):.1f} s; {len(mine)} calls of it, {sum(float(c[1]) for c in mine):.2f} s; "
      f"other calls after its build: "
      f"{sum(float(c[1]) for c in others if end(c) > meta['started'] + meta['seconds'] - t0):.2f} s")
PY
}
built() { find $R/c_ours/builds -name meta.json -newer $1 2>/dev/null | xargs -r python3 -c \
  "import json,sys; print(' '.join(str(json.load(open(f)).get('seconds')) for f in sys.argv[1:]))"; }

if [ "$MODE" = cold ]; then
  touch $R/t0; ours ours_cold 150 ds; echo "ours_cold_builds $(built $R/t0)" >> $R/walls
  touch $R/t1; ours ours_warm 60 ds; echo "ours_warm_builds $(built $R/t1)" >> $R/walls
  edit
  touch $R/t2; ours ours_edit 120 ds; echo "ours_edit_builds $(built $R/t2)" >> $R/walls
  ours ours_judge 60 small -k timing -v --fib-clock=flashinfer-bench
  fib fib_cold 330
  tar -czf $OUT/c_fib.tar.gz --exclude='*.o' -C $R c_fib  # objects: it recompiles them anyway
elif [ "$MODE" = edit ]; then
  touch $R/t0; ours ours_cold 150 ds; echo "ours_cold_builds $(built $R/t0)" >> $R/walls
  ours ours_warm 60 ds
  [ "${PERF15_SPY:-0}" = 1 ] && SPY=1 ours ours_warm_spy 90 ds  # PERF15_SPY=1: py-spy profile
  edit; touch $R/t2; ours ours_edit 120 ds; echo "ours_edit_builds $(built $R/t2)" >> $R/walls
  timeline ours_edit | tee -a $R/timelines.txt
  edit; touch $R/t3; ours ours_edit_k 120 ds -k "$(cat $R/edited)"
  echo "ours_edit_k_builds $(built $R/t3)" >> $R/walls; timeline ours_edit_k | tee -a $R/timelines.txt
  ours ours_warm2 60 ds
else
  mkdir -p $R && tar -xzf .perf15/c_fib.tar.gz -C $R && touch -d '-1 hour' $(find $R/c_fib -type f)
  fib fib_warm 330
  ours ours_cold 150 ds
  ours ours_warm 60 ds
fi
python3 - $R <<'PY'
import collections, json, sys
from pathlib import Path
r = Path(sys.argv[1])
print("GPU:", (r / "gpu.txt").read_text().strip())
print((r / "walls").read_text())
for f in sorted(r.glob("*.calls.tsv")):
    agg = collections.defaultdict(lambda: [0, 0.0])
    for line in f.read_text().splitlines():
        op, s, *_ = line.split("\t")
        agg[op][0] += 1; agg[op][1] += float(s)
    print(f.name, {k: (n, round(t, 2)) for k, (n, t) in sorted(agg.items())})
    name = f.name.split(".")[0]
    walls = dict(line.split()[:2] for line in (r / "walls").read_text().splitlines())
    if (r / f"{name}.t0").exists() and name in walls:  # the session's first and last seconds
        t0 = float((r / f"{name}.t0").read_text())
        rows = [line.split("\t") for line in f.read_text().splitlines()]
        first = float(rows[0][4]) - float(rows[0][1]) - t0
        last = max(float(x[4]) for x in rows) - t0
        print(f"  {name}: first worker call began at {first:.2f} s, the last ended at "
              f"{last:.2f} s, the command took {walls[name]} s")
for f in sorted(r.glob("*.bench.json")):
    try:
        b = json.loads(f.read_text())["benchmarks"]
    except Exception as e:
        print(f.name, "unreadable", e); continue
    info = [x["extra_info"] for x in b]
    print(f.name, len(b), "rows; gpu_uuid", sorted({i.get("gpu_uuid") for i in info}),
          "gpu_device", sorted({i.get("gpu_device") for i in info}),
          "judge rows", sum("judge_latency_ms" in i for i in info))
PY
pack
