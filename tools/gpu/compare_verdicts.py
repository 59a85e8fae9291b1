"""pytest-fib's verdicts (trace lines and junit) beside flashinfer-bench's (fib_bench_verdicts.py)
per (solution, workload): counts on each side and every disagreement with both messages.
Usage: python compare_verdicts.py TRACES_DIR JUNIT.xml|- FIB_BENCH.jsonl"""
import collections
import glob
import json
import sys
import xml.etree.ElementTree as ET

traces, junit, theirs_path = sys.argv[1:4]
ours: dict[tuple[str, str], tuple[str, str]] = {}
for path in glob.glob(f"{traces}/**/*.jsonl", recursive=True):
    if ".pytest-fib" in path:
        continue
    for line in open(path):
        t = json.loads(line)
        ours[t["solution"], t["workload"]["uuid"]] = (t["evaluation"]["status"],
                                                      (t["evaluation"].get("log") or "")[:300])
skipped = collections.Counter()
cases = ET.parse(junit).getroot().iter("testcase") if junit != "-" else []  # "-": no junit
for case in cases:
    el = case.find("skipped")
    if el is not None:
        skipped[el.get("message", "")[:90]] += 1
theirs = {}
for line in open(theirs_path):
    t = json.loads(line)
    theirs[t["solution"], t["workload"]] = (t["status"], t.get("log", "")[-300:])
print("pytest-fib:", dict(collections.Counter(s for s, _ in ours.values())),
      "skipped:", dict(skipped))
print("flashinfer-bench:", dict(collections.Counter(s for s, _ in theirs.values())))
both = sorted(set(ours) & set(theirs))
agree = collections.Counter()
for key in both:
    a, b = ours[key][0], theirs[key][0]
    if a == b:
        agree[a] += 1
        continue
    print(f"DISAGREE {key[0]} {key[1][:8]}: pytest-fib {a} | flashinfer-bench {b}\n"
          f"    ours:   {ours[key][1]!r}\n    theirs: {theirs[key][1]!r}")
print(f"both judged {len(both)}; agree {sum(agree.values())} {dict(agree)}; "
      f"only pytest-fib {len(set(ours) - set(theirs))}; only flashinfer-bench "
      f"{len(set(theirs) - set(ours))}")
