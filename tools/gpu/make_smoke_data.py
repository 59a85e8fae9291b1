"""Build the small datasets the GPU smoke run uses (under the folder given as argv[1]).

ds_toy: a float32 'scale2' op with Python solutions that crash, hang, raise, mutate... and two
TVM-FFI CUDA solutions (correct; out-of-bounds write) -- isolation on a GPU.
ds_rms: rmsnorm_h4096 (Llama-3.1-8B) with the batch sizes the timing issue names, and a plain
one-row-per-program Triton kernel -- timing against ncu and CUPTI.
"""
import json
import sys
import textwrap
from pathlib import Path

root = Path(sys.argv[1])


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def kit(folder: Path, name: str, definition: str, language: str, entry: str, files: dict) -> None:
    write(folder / "config.toml", f"""
        [solution]
        name = "{name}"
        definition = "{definition}"
        author = "smoke"
        [build]
        language = "{language}"
        entry_point = "{entry}"
        destination_passing_style = true
    """)
    for fname, body in files.items():
        write(folder / "solution" / language / fname, body)


def workloads(path: Path, definition: str, axis: str, values: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for i, v in enumerate(values):
            fh.write(json.dumps({"definition": definition, "solution": None, "evaluation": None,
                                 "workload": {"uuid": f"{i:08d}-smoke", "axes": {axis: v},
                                              "inputs": {}}}) + "\n")


toy = root / "ds_toy"
write(toy / "definitions/toy/scale2.json", json.dumps({
    "name": "scale2", "op_type": "toy",
    "axes": {"n": {"type": "var"}, "d": {"type": "const", "value": 64}},
    "inputs": {"x": {"shape": ["n", "d"], "dtype": "float32"}},
    "outputs": {"y": {"shape": ["n", "d"], "dtype": "float32"}},
    "reference": "import torch\ndef run(x):\n    return x * 2\n"}))
workloads(toy / "workloads/toy/scale2.jsonl", "scale2", "n", [1, 7, 4096])
py = {
    "a_ok": "def run(x, y):\n    y.copy_(x * 2)\n",
    "b_crash": "import ctypes\ndef run(x, y):\n    ctypes.string_at(0)\n",
    "c_hang": "def run(x, y):\n    while True:\n        pass\n",
    "d_raises": "def run(x, y):\n    raise ValueError('boom')\n",
    "e_mutate": "def run(x, y):\n    y.copy_(x * 2)\n    x.zero_()\n",
    "z_ok_after": "def run(x, y):\n    y.copy_(x + x)\n",
}
for name, body in py.items():
    kit(toy / "k" / name, name, "scale2", "python", "kernel.py::run", {"kernel.py": body})
CU = """
#include <cuda_runtime.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/function.h>
#include <tvm/ffi/error.h>

__global__ void scale2_kernel(const float* x, float* y, long n, long shift) {
  long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (i < n) y[i + shift] = 2.0f * x[i];
}

void run(tvm::ffi::TensorView x, tvm::ffi::TensorView y) {
  long n = x.numel();
  scale2_kernel<<<(n + 255) / 256, 256>>>(static_cast<const float*>(x.data_ptr()),
                                        static_cast<float*>(y.data_ptr()), n, SHIFT);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) TVM_FFI_THROW(RuntimeError) << cudaGetErrorString(err);
}
TVM_FFI_DLL_EXPORT_TYPED_FUNC(run, run);
"""
kit(toy / "k" / "f_cuda_ok", "f_cuda_ok", "scale2", "cuda", "kernel.cu::run",
    {"kernel.cu": "#define SHIFT 0L\n" + CU})
kit(toy / "k" / "g_cuda_oob", "g_cuda_oob", "scale2", "cuda", "kernel.cu::run",
    {"kernel.cu": "#define SHIFT (1L << 34)\n" + CU})  # 64 GiB past the buffer: illegal address
kit(toy / "k" / "h_cuda_ok_after", "h_cuda_ok_after", "scale2", "cuda", "kernel.cu::run",
    {"kernel.cu": "#define SHIFT 0L\n#define scale2_kernel scale2_kernel_b\n" + CU})

rms = root / "ds_rms"
write(rms / "definitions/rmsnorm/rmsnorm_h4096.json", json.dumps({
    "name": "rmsnorm_h4096", "op_type": "rmsnorm",
    "axes": {"batch_size": {"type": "var"}, "hidden_size": {"type": "const", "value": 4096}},
    "inputs": {"hidden_states": {"shape": ["batch_size", "hidden_size"], "dtype": "bfloat16"},
               "weight": {"shape": ["hidden_size"], "dtype": "bfloat16"}},
    "outputs": {"output": {"shape": ["batch_size", "hidden_size"], "dtype": "bfloat16"}},
    "reference": ("import torch\n\n@torch.no_grad()\ndef run(hidden_states, weight):\n"
                  "    x = hidden_states.to(torch.float32)\n"
                  "    inv = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-5)\n"
                  "    return ((x * inv) * weight.to(torch.float32)).to(hidden_states.dtype)\n")}))
workloads(rms / "workloads/rmsnorm/rmsnorm_h4096.jsonl", "rmsnorm_h4096", "batch_size",
          [1, 7, 64, 1024, 14509])
kit(rms / "k" / "plain_triton", "plain_triton", "rmsnorm_h4096", "triton", "kernel.py::run", {
    "kernel.py": '''
        import torch
        import triton
        import triton.language as tl


        @triton.jit
        def _rmsnorm_kernel(X, W, Y, stride, N: tl.constexpr, BLOCK: tl.constexpr):
            row = tl.program_id(0)
            cols = tl.arange(0, BLOCK)
            mask = cols < N
            x = tl.load(X + row * stride + cols, mask=mask, other=0.0).to(tl.float32)
            w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
            inv = tl.rsqrt(tl.sum(x * x, axis=0) / N + 1e-5)
            tl.store(Y + row * stride + cols, (x * inv * w).to(Y.dtype.element_ty), mask=mask)


        def run(hidden_states, weight, output):
            rows, n = hidden_states.shape
            _rmsnorm_kernel[(rows,)](hidden_states, weight, output, hidden_states.stride(0),
                                     N=n, BLOCK=triton.next_power_of_2(n), num_warps=8)
    '''})
print("datasets in", root)
