"""Markdown table for docs/kernels.md from a bench/kernels_gpu.py results.json.

    python bench/report_gpu.py /path/to/results.json

Each solution's row is the sweep entry of the launch configuration its run() now picks (the
hint-free variants, which are the shipped sources), so the numbers are measurements of exactly
the code in kernels/.
"""

from __future__ import annotations

import json
import sys

# What run() picks now (kernels/*/solution: _launch_config / PickConfig), per definition.
def tri_rms(b):
    return (1, 4) if 256 < b <= 4096 else (1, 8)


def tri_fused(b):
    return (1, 8) if b <= 256 else (1, 4)


def cu_rms(b):
    return (128, 1) if 256 < b <= 4096 else (256, 1)


def cu_fused(b):
    return (256, 1)


def tri_gdn(b):
    return (32, 8) if b < 8 else (64, 8) if b < 32 else (128, 8)


def cu_gdn(b):
    return (4, 2) if b <= 8 else (8, 8) if b <= 64 else (4, 2)


PICK = {
    "rmsnorm_h4096": (tri_rms, cu_rms),
    "fused_add_rmsnorm_h4096": (tri_fused, cu_fused),
    "gdn_decode_qk4_v8_d128_k_last": (tri_gdn, cu_gdn),
}


def main() -> None:
    res = json.load(open(sys.argv[1]))
    copy_bw = res["copy_1GiB_GBps"]
    t = {(r["def"], r["batch"], r["kernel"]): r for r in res["rows"] if "us" in r}
    print(f"Device: {res['device']}; 1 GiB device-to-device copy: {copy_bw:.0f} GB/s (read+write); "
          f"trivial one-row kernel (batch 1): {res['trivial_row_us']:.2f} us; median of {res['reps']}.\n")
    for name, (pt, pc) in PICK.items():
        batches = sorted({b for (d, b, _) in t if d == name})
        rms = not name.startswith("gdn")
        print(f"**{name}** (times in us; % = bandwidth as a share of the same-size copy / of the "
              "1 GiB copy; x = speed-up, >1 is faster)\n")
        head = ("| batch | Triton | CUDA | plain Triton | torch ref | copy | "
                + ("trivial-rows | " if rms else "")
                + "Triton % copy | CUDA % copy | Triton vs plain | CUDA vs plain | "
                + ("Triton / trivial | CUDA / trivial | " if rms else "")
                + "vs torch ref (T / C) |")
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        for b in batches:
            g = lambda k: t[(name, b, k)]["us"]  # noqa: E731
            tri, cu = t[(name, b, f"triton-nohints{pt(b)}")], t[(name, b, f"cuda-plainio{pc(b)}")]
            plain, ref, cp = g("plain-triton"), g("torch-ref"), g("copy")
            pct = lambda r: f"{100 * cp / r['us']:.0f} / {100 * r['bytes'] / r['us'] / 1e3 / copy_bw:.0f}"  # noqa: E731
            cells = [str(b), f"{tri['us']:.2f} {pt(b)}", f"{cu['us']:.2f} {pc(b)}", f"{plain:.2f}",
                     f"{ref:.1f}", f"{cp:.2f}"]
            if rms:
                cells.append(f"{g('trivial-rows'):.2f}")
            cells += [pct(tri), pct(cu), f"{plain / tri['us']:.2f}x", f"{plain / cu['us']:.2f}x"]
            if rms:
                cells += [f"{tri['us'] / g('trivial-rows'):.2f}", f"{cu['us'] / g('trivial-rows'):.2f}"]
            cells.append(f"{ref / tri['us']:.1f}x / {ref / cu['us']:.1f}x")
            print("| " + " | ".join(cells) + " |")
        print()

if __name__ == "__main__":
    main()
