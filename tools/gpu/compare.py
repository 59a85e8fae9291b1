"""Side by side: pytest-fib's medians (two sessions) vs CUPTI and ncu for the rmsnorm Triton kernel."""
import json
import sys

out = sys.argv[1]
refs = json.load(open(f"{out}/refs.json"))


def medians(path):
    data = json.load(open(path))
    return {b["extra_info"]["axes"]["batch_size"]: b["stats"]["median"] * 1e6
            for b in data["benchmarks"]
            if b["extra_info"]["solution"] == "rmsnorm_h4096_triton"
            and b["extra_info"]["definition"] == "rmsnorm_h4096"}


m1, m2 = medians(f"{out}/k1.json"), medians(f"{out}/k2.json")
print(f"{'batch':>6} {'fib run1':>9} {'fib run2':>9} {'CUPTI':>8} {'ncu':>8} {'vs nearer':>9} "
      f"{'vs lower':>8} {'run2/run1':>9}")
for b in sorted(m1):
    c, n = refs["cupti_us"].get(str(b)), refs.get("ncu_us", {}).get(str(b))
    if c is None or n is None:
        print(f"{b:>6} {m1[b]:9.2f} {m2.get(b, float('nan')):9.2f} (no reference measurement)")
        continue
    near = min((c, n), key=lambda r: abs(r - m1[b]))
    print(f"{b:>6} {m1[b]:9.2f} {m2.get(b, float('nan')):9.2f} {c:8.2f} {n:8.2f} "
          f"{m1[b] / near:9.3f} {m1[b] / min(c, n):8.3f} {m2.get(b, float('nan')) / m1[b]:9.3f}")
