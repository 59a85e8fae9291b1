"""Outcome counts of a pytest-fib run (its --fib-traces folder), and where the public dataset's own
traces record the same solution on the same workload, whether the two agree.
Usage: python vs_dataset_traces.py OUR_TRACES_DIR DATASET_DIR"""
import collections
import json
import sys
from pathlib import Path


def lines(root: Path):
    for path in sorted(root.glob("traces/**/*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def key(t):
    return t["definition"], t["solution"], t["workload"]["uuid"]


def main(ours_dir: str, dataset_dir: str) -> None:
    ours = {}
    for t in lines(Path(ours_dir)):
        if t.get("solution") and t.get("evaluation"):
            ours[key(t)] = t["evaluation"]["status"]
    print("pytest-fib outcomes:", dict(collections.Counter(ours.values())))
    theirs = collections.defaultdict(list)
    for t in lines(Path(dataset_dir)):
        if t.get("solution") and t.get("evaluation") and key(t) in ours:
            hw = t["evaluation"].get("environment", {}).get("hardware", "?")
            theirs[key(t)].append((t["evaluation"]["status"], hw))
    agree = collections.Counter()
    for k, recorded in sorted(theirs.items()):
        for status, hw in recorded:
            agree[(ours[k], status, hw)] += 1
    print(f"cases also in the dataset's traces: {len(theirs)}")
    for (mine, status, hw), n in sorted(agree.items()):
        print(f"  ours {mine:22} dataset {status:22} on {hw:30} x{n}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
