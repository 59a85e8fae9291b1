"""A dataset folder for the session-time benchmarks (tools/gpu/perf15.sh, profile15.sh): the named
definitions of SRC, their workloads (all, or N per definition spread over the sizes), and only their
CUDA solutions. Usage: python perf_dataset.py SRC DST N|all DEF [DEF ...]"""
import json
import shutil
import sys
from pathlib import Path


def size(line: str) -> int:
    axes = json.loads(line)["workload"]["axes"]
    out = 1
    for v in axes.values():
        out *= max(1, int(v))
    return out


def pick(lines: list[str], n: str) -> list[str]:
    """N workloads spread evenly over the sizes, smallest and largest included."""
    if n == "all" or len(lines) <= int(n):
        return lines
    ordered = sorted(lines, key=size)
    k = int(n)
    return [ordered[round(i * (len(ordered) - 1) / (k - 1))] for i in range(k)] if k > 1 else ordered[:1]


def main(src: Path, dst: Path, n: str, names: set[str]) -> None:
    for f in (src / "definitions").rglob("*.json"):
        if f.stem in names:
            (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst / f.relative_to(src))
    for f in (src / "workloads").rglob("*.jsonl"):
        if f.stem in names:
            lines = [l for l in f.read_text().splitlines() if l.strip()]
            (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / f.relative_to(src)).write_text("\n".join(pick(lines, n)) + "\n")
    count = 0
    for f in sorted((src / "solutions").rglob("*.json")):
        raw = json.loads(f.read_text())
        if raw.get("definition") in names and raw["spec"]["language"] == "cuda":
            (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst / f.relative_to(src))
            count += 1
    wl = sum(len(p.read_text().splitlines()) for p in (dst / "workloads").rglob("*.jsonl"))
    print(f"{dst}: {count} CUDA solutions, {wl} workloads of {sorted(names)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], set(sys.argv[4:]))
