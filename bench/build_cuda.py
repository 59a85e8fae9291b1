"""Compile every CUDA solution in kernels/ through flashinfer-bench's TVMFFIBuilder (sm_90).

    CUDA_HOME=/usr/local/cuda TVM_FFI_CUDA_ARCH_LIST=9.0 python bench/build_cuda.py [--copy-to DIR]

Prints the ptxas resource report (registers, spills) of each kernel; --copy-to puts each built
.so at DIR/<solution>.so (bench/kernels_gpu.py loads them on the GPU machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from solutions import load_definition, load_solution, solution_dirs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copy-to", type=Path)
    ap.add_argument("--plainio-variants", action="store_true",
                    help="also build, into --copy-to, <solution>__plainio.so: the same source with "
                    "the cache hints removed (ld.global.nc.L1::no_allocate -> ld.global, "
                    "st.global.cs -> st.global), for an A/B on the GPU")
    args = ap.parse_args()
    os.environ.setdefault("CUDA_HOME", "/usr/local/cuda")
    os.environ.setdefault("TVM_FFI_CUDA_ARCH_LIST", "9.0")
    from flashinfer_bench.compile import BuilderRegistry

    failed = 0
    for folder in solution_dirs():
        sol = load_solution(folder)
        if sol.spec.language.value != "cuda":
            continue
        definition = load_definition(sol.definition)
        try:
            runnable = BuilderRegistry.get_instance().build(definition, sol)
        except Exception as e:  # report every failure, not just the first
            print(f"FAIL {sol.name}: {e}")
            failed += 1
            continue
        so = runnable.metadata.misc["binary"]
        print(f"ok   {sol.name}: {so}")
        for src in folder.glob("solution/cuda/*.cu"):
            res = subprocess.run(
                ["nvcc", "-arch=sm_90", "-std=c++17", "-O3", "-c", "-o", "/dev/null",
                 "-Xptxas", "-v", f"-I{Path(so).parent}", *_tvm_includes(), str(src)],
                capture_output=True, text=True,
            )
            for line in res.stderr.splitlines():
                if "Compiling entry function" in line:
                    print("     ", line.split("'")[1][:90])
                elif "registers" in line or ("spill" in line and "0 bytes spill" not in line):
                    print("        ", line.strip().removeprefix("ptxas info    : "))
        if args.copy_to:
            args.copy_to.mkdir(parents=True, exist_ok=True)
            shutil.copy(so, args.copy_to / f"{sol.name}.so")
            if args.plainio_variants:
                import tvm_ffi.cpp

                (src,) = folder.glob("solution/cuda/*.cu")
                work = Path("/tmp/fib_plainio") / sol.name
                work.mkdir(parents=True, exist_ok=True)
                text = src.read_text().replace("ld.global.nc.L1::no_allocate", "ld.global")
                text = text.replace("st.global.cs", "st.global")
                (work / src.name).write_text(text)
                lib = tvm_ffi.cpp.build(name=f"{sol.name}__plainio", cuda_files=[str(work / src.name)],
                                        build_directory=str(work))
                shutil.copy(lib, args.copy_to / f"{sol.name}__plainio.so")
                print(f"     + {sol.name}__plainio.so")
    return 1 if failed else 0


def _tvm_includes() -> list[str]:
    import tvm_ffi.libinfo as li

    return [f"-I{p}" for p in li.include_paths()]


if __name__ == "__main__":
    raise SystemExit(main())
