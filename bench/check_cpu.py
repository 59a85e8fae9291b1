"""CPU checks of the project's solutions, no GPU needed.

    python bench/check_cpu.py            # Triton solutions under TRITON_INTERPRET=1
    python bench/check_cpu.py --cuda     # also compile the CUDA solutions (TVMFFIBuilder, sm_90)

Triton: every solution in kernels/ is packed and built like the plugin does it
(pack_solution_from_files + flashinfer-bench's builder), run destination-passing on inputs from
flashinfer-bench's own generator for batch sizes 1, 7 and 64 (plus a zero state for GDN), and
compared with the definition's reference using flashinfer-bench's rule: an element fails only if
abs err > 1e-2 AND rel err > 1e-2. The output is poisoned (NaN) first so unwritten elements fail.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "1"  # must be set before triton is imported

sys.path.insert(0, str(Path(__file__).resolve().parent))
from solutions import load_definition, load_solution, solution_dirs  # noqa: E402

ATOL = RTOL = 1e-2
BATCHES = (1, 7, 64)


def compare(name, out, ref) -> tuple[bool, str]:
    import torch

    out, ref = out.float(), ref.float()
    if out.shape != ref.shape:
        return False, f"{name}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    abs_err = (out - ref).abs()
    rel_err = abs_err / ref.abs().clamp_min(1e-8)
    bad = ((abs_err > ATOL) & (rel_err > RTOL)) | ~torch.isfinite(out)
    msg = f"{name}: max abs {abs_err.nan_to_num(float('inf')).max().item():.3g}"
    if bad.any():
        first = bad.nonzero()[0].tolist()
        msg += f", {int(bad.sum())} bad, first {first}: {out[tuple(first)].item()} vs {ref[tuple(first)].item()}"
    return not bad.any(), msg


def check_triton(folder: Path) -> bool:
    import torch
    from flashinfer_bench.bench.utils import gen_inputs
    from flashinfer_bench.compile import BuilderRegistry
    from flashinfer_bench.data import Workload

    sol = load_solution(folder)
    definition = load_definition(sol.definition)
    runnable = BuilderRegistry.get_instance().build(definition, sol)
    ns: dict = {}
    exec(definition.reference, ns)
    ok = True
    cases = [(bs, False) for bs in BATCHES]
    if "state" in definition.inputs:
        cases.append((7, True))  # state=None (zeros), as the definition allows
    for bs, zero_state in cases:
        torch.manual_seed(bs)
        wl = Workload(uuid=f"cpu-check-{bs}", axes={"batch_size": bs},
                      inputs={n: {"type": "random"} for n in definition.inputs if n != "scale"}
                      | ({"scale": {"type": "scalar", "value": 0.08838834764831843}}
                         if "scale" in definition.inputs else {}))
        inputs = gen_inputs(definition, wl, "cpu")
        if zero_state:
            inputs[list(definition.inputs).index("state")] = None
        ref = ns["run"](*inputs)
        ref = ref if isinstance(ref, tuple) else (ref,)
        shapes = definition.get_output_shapes(wl.axes)
        outs = [torch.full(shape, float("nan"), dtype=r.dtype) for shape, r in zip(shapes, ref)]
        runnable.call_destination_passing(*inputs, *outs)
        for name, o, r in zip(definition.outputs, outs, ref):
            good, msg = compare(name, o, r)
            ok &= good
            tag = f"batch {bs}" + (" state=None" if zero_state else "")
            print(f"  {'ok  ' if good else 'FAIL'} {sol.name} {tag}: {msg}")
    runnable.cleanup()
    ok &= check_launch_configs(folder, definition, ns["run"])
    return ok


# Launch shapes the GPU sweep (bench/kernels_gpu.py) may pick; batch 7 makes every multi-row
# shape take its masked (uneven) path.
SWEEP = {
    "rmsnorm": [(1, 1), (1, 2)] + [(r, w) for r in (1, 2, 4) for w in (4, 8, 16)],
    "gdn": [(bv, w) for bv in (8, 16, 32, 64, 128) for w in (2, 4, 8)],
}


def check_launch_configs(folder: Path, definition, reference) -> bool:
    """Run kernel.launch() with every configuration of the sweep (not only run()'s choice)."""
    import importlib.util

    import torch
    from flashinfer_bench.bench.utils import gen_inputs
    from flashinfer_bench.data import Workload

    spec = importlib.util.spec_from_file_location(f"_sweep_{folder.name}", folder / "solution/triton/kernel.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(123)
    scalar = {"scale": {"type": "scalar", "value": 0.08838834764831843}} if "scale" in definition.inputs else {}
    wl = Workload(uuid="cpu-sweep", axes={"batch_size": 7},
                  inputs={n: {"type": "random"} for n in definition.inputs if n not in scalar} | scalar)
    inputs = gen_inputs(definition, wl, "cpu")
    ref = reference(*inputs)
    ref = ref if isinstance(ref, tuple) else (ref,)
    ok = True
    for cfg in SWEEP[definition.op_type]:
        outs = [torch.full(r.shape, float("nan"), dtype=r.dtype) for r in ref]
        mod.launch(*inputs, *outs, *cfg)
        for name, o, r in zip(definition.outputs, outs, ref):
            good, msg = compare(name, o, r)
            ok &= good
            if not good:
                print(f"  FAIL {folder.name} launch{cfg}: {msg}")
    print(f"  {'ok  ' if ok else 'FAIL'} {folder.name}: {len(SWEEP[definition.op_type])} launch configs at batch 7")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cuda", action="store_true", help="also compile the CUDA solutions")
    args = ap.parse_args()
    ok = True
    for folder in solution_dirs():
        if (folder / "solution" / "triton").is_dir():
            ok &= check_triton(folder)
    if args.cuda:
        import subprocess

        ok &= subprocess.run([sys.executable, str(Path(__file__).parent / "build_cuda.py")]).returncode == 0
    print("ALL OK" if ok else "FAILURES")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
