"""Independent references for pytest-fib's timing (issue: timing you can trust).

Times one Triton/Python rmsnorm kernel file at the given batch sizes in two ways that do not share
code with pytest-fib:
  cupti: torch.profiler kernel records (CUPTI activity), L2 flushed (256 MB write) before each
         launch, median of the kernel's own durations;
  ncu:   run this script under `ncu --clock-control none --cache-control all --metrics
         gpu__time_duration.sum --csv`, which times every launch with a cold L2 (mode --ncu-child).
Usage: python validate_timing.py KERNEL_PY OUT_JSON [--ncu]
"""
import csv
import importlib.util
import io
import json
import statistics
import subprocess
import sys

import torch

BATCHES = [1, 7, 64, 1024, 14509]
REPS = 200


def load(path):
    spec = importlib.util.spec_from_file_location("kernel_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.run


def args_for(batch):
    g = torch.Generator(device="cuda").manual_seed(batch)
    x = torch.randn(batch, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16, generator=g)
    return x, w, torch.empty_like(x)


def cupti(run):
    flush = torch.empty(256 * 2**20 // 4, dtype=torch.int32, device="cuda")
    out = {}
    for b in BATCHES:
        a = args_for(b)
        for _ in range(10):
            run(*a)
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(REPS):
                flush.zero_()
                run(*a)
            torch.cuda.synchronize()
        durs = [e.time_range.elapsed_us() for e in prof.events()
                if e.device_type == torch.autograd.DeviceType.CUDA and "rmsnorm" in e.name.lower()]
        out[b] = statistics.median(durs)  # us
    return out


def ncu_child(run):
    for b in BATCHES:
        a = args_for(b)
        for _ in range(50):
            run(*a)
        torch.cuda.synchronize()


def ncu(kernel):
    cmd = ["ncu", "--clock-control", "none", "--cache-control", "all", "--metrics",
           "gpu__time_duration.sum", "--csv", "--print-units", "base", "-k", "regex:rmsnorm",
           sys.executable, __file__, kernel, "-", "--ncu-child"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    rows = [r for r in csv.reader(io.StringIO(proc.stdout)) if len(r) > 10]
    header, data = rows[0], rows[1:]
    iv = header.index("Metric Value")
    vals = [float(r[iv].replace(",", "")) for r in data]  # ns, in launch order
    out = {}
    for i, b in enumerate(BATCHES):
        chunk = vals[i * 50:(i + 1) * 50][10:]  # drop the first 10 (JIT, first touch)
        out[b] = statistics.median(chunk) / 1e3 if chunk else float("nan")
    if not vals:
        out["stderr"] = proc.stderr[-3000:]
    return out


if __name__ == "__main__":
    kernel, out_json = sys.argv[1], sys.argv[2]
    run = load(kernel)
    if "--ncu-child" in sys.argv:
        ncu_child(run)
        sys.exit(0)
    result = {"cupti_us": cupti(run)}
    if "--ncu" in sys.argv:
        result["ncu_us"] = ncu(kernel)
    print(json.dumps(result, indent=1))
    with open(out_json, "w") as fh:
        json.dump(result, fh, indent=1)
