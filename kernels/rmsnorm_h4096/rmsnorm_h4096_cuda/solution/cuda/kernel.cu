// RMSNorm over rows of 4096 bf16 values (Llama-3.1-8B hidden size), CUDA through TVM-FFI.
//
//   y[i, :] = x[i, :] * rsqrt(mean(x[i, :]^2) + eps) * w        (fp32 math, bf16 out, eps 1e-5)
//
// Memory traffic: read x (B * 8 KiB), write y (B * 8 KiB), read w (8 KiB, L2-resident after the
// first block). ~4 flops per element: bandwidth bound at large batch, latency bound at small.
//
// Work layout: kThreadsPerRow threads own a row; each loads its 16-byte slices
// (4096 / 8 / kThreadsPerRow vectors) straight into registers with 16-byte loads, so x is read
// exactly once; the sum of squares is reduced with warp shuffles (plus one shared-memory step when
// a row spans several warps); the normalised row is written with 16-byte stores.
// Plain ld.global / st.global on purpose: the cache-hinted forms (ld.global.nc.L1::no_allocate,
// st.global.cs) measured 3-6 % slower at large batch on an H200 (bench/kernels_gpu.py A/B,
// docs/kernels.md).
// Launch choice (PickConfig): measured on an H200 with bench/kernels_gpu.py.
//
// Exports: run(hidden_states, weight, output)                          destination-passing entry
//          run_config(hidden_states, weight, output, threads_per_row, rows_per_block)
//                                                                    same, explicit launch shape
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/c_env_api.h>
#include <tvm/ffi/function.h>

#include <cstdint>

namespace rmsnorm_h4096 {

constexpr int kHidden = 4096;
constexpr int kVec = 8;  // bf16 values per 16-byte vector
constexpr float kEps = 1e-5f;

__device__ __forceinline__ uint4 LoadGlobal(const void* ptr) {
  uint4 v;
  asm volatile("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(ptr));
  return v;
}

__device__ __forceinline__ void StoreGlobal(void* ptr, const uint4& v) {
  asm volatile("st.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(ptr), "r"(v.x), "r"(v.y),
               "r"(v.z), "r"(v.w)
               : "memory");
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// kThreadsPerRow threads share one row (a multiple of 32: whole warps); a block holds
// kRowsPerBlock rows side by side. With kThreadsPerRow == 32 a row is one warp's: the sum of squares
// is reduced with shuffles only (no shared memory, no barrier), the shortest dependent chain at
// small batch; wider rows add one shared-memory step.
template <int kThreadsPerRow, int kRowsPerBlock>
__global__ void __launch_bounds__(kThreadsPerRow* kRowsPerBlock)
    RmsNormKernel(const __nv_bfloat16* __restrict__ x, int64_t x_stride,
                  const __nv_bfloat16* __restrict__ w, __nv_bfloat16* __restrict__ y,
                  int64_t y_stride, int64_t n_rows) {
  static_assert(kThreadsPerRow % 32 == 0, "a row is covered by whole warps");
  static_assert(kHidden % (kVec * kThreadsPerRow) == 0, "threads must divide the row into vectors");
  constexpr int kPerThread = kHidden / kVec / kThreadsPerRow;  // 16-byte vectors per thread
  constexpr int kWarpsPerRow = kThreadsPerRow / 32;
  __shared__ float partial[kRowsPerBlock][kWarpsPerRow];

  const int t = threadIdx.x % kThreadsPerRow;  // position inside the row
  const int g = threadIdx.x / kThreadsPerRow;  // which of the block's rows
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + g;
  const bool active = row < n_rows;

  // Issue every load first: kPerThread independent 16-byte loads of x in flight per thread.
  uint4 xv[kPerThread];
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int col = (i * kThreadsPerRow + t) * kVec;
    xv[i] = active ? LoadGlobal(x + row * x_stride + col) : make_uint4(0, 0, 0, 0);
  }
  uint4 wv[kPerThread];
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    wv[i] = __ldg(reinterpret_cast<const uint4*>(w) + i * kThreadsPerRow + t);
  }

  float acc = 0.f;
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&xv[i]);
#pragma unroll
    for (int j = 0; j < kVec / 2; ++j) {
      const float2 f = __bfloat1622float2(h2[j]);
      acc = fmaf(f.x, f.x, acc);
      acc = fmaf(f.y, f.y, acc);
    }
  }
  acc = WarpSum(acc);
  if constexpr (kWarpsPerRow > 1) {
    if ((t & 31) == 0) partial[g][t >> 5] = acc;
    __syncthreads();
    acc = 0.f;
#pragma unroll
    for (int k = 0; k < kWarpsPerRow; ++k) acc += partial[g][k];
  }
  if (!active) return;
  const float inv_rms = rsqrtf(acc / static_cast<float>(kHidden) + kEps);

#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const __nv_bfloat162* xh = reinterpret_cast<const __nv_bfloat162*>(&xv[i]);
    const __nv_bfloat162* wh = reinterpret_cast<const __nv_bfloat162*>(&wv[i]);
    uint4 out;
    __nv_bfloat162* oh = reinterpret_cast<__nv_bfloat162*>(&out);
#pragma unroll
    for (int j = 0; j < kVec / 2; ++j) {
      const float2 xf = __bfloat1622float2(xh[j]);
      const float2 wf = __bfloat1622float2(wh[j]);
      // Same rounding order as the reference: (x * inv_rms) * w in fp32, one cast to bf16.
      oh[j] = __floats2bfloat162_rn((xf.x * inv_rms) * wf.x, (xf.y * inv_rms) * wf.y);
    }
    const int col = (i * kThreadsPerRow + t) * kVec;
    StoreGlobal(y + row * y_stride + col, out);
  }
}

template <int kThreadsPerRow, int kRowsPerBlock>
void Launch(const __nv_bfloat16* x, int64_t xs, const __nv_bfloat16* w, __nv_bfloat16* y,
            int64_t ys, int64_t n_rows, cudaStream_t stream) {
  const int64_t blocks = (n_rows + kRowsPerBlock - 1) / kRowsPerBlock;
  RmsNormKernel<kThreadsPerRow, kRowsPerBlock>
      <<<static_cast<unsigned>(blocks), kThreadsPerRow * kRowsPerBlock, 0, stream>>>(x, xs, w, y,
                                                                                    ys, n_rows);
}

// Launch shape, from the H200 sweep (docs/kernels.md): one row per 256-thread block (2 vectors per
// thread) wins at both ends; 128 threads per row (4 vectors per thread) is ~5 % faster around
// batch 1024, where 256-thread blocks leave the SMs under-filled. One warp per row (no barrier)
// lost at every batch: a single warp issuing 32 loads per row was ~1.8x slower at batch <= 64.
void PickConfig(int64_t n_rows, int64_t* threads_per_row, int64_t* rows_per_block) {
  *rows_per_block = 1;
  *threads_per_row = (n_rows > 256 && n_rows <= 4096) ? 128 : 256;
}

bool IsBf16(const tvm::ffi::TensorView& t) {
  return t.dtype().code == kDLBfloat && t.dtype().bits == 16 && t.dtype().lanes == 1;
}

void CheckInputs(const tvm::ffi::TensorView& x, const tvm::ffi::TensorView& w,
                 const tvm::ffi::TensorView& y) {
  if (x.ndim() != 2 || x.size(1) != kHidden) {
    TVM_FFI_THROW(ValueError) << "rmsnorm_h4096: hidden_states must be [batch, 4096], got ndim "
                              << x.ndim() << " last dim " << x.size(-1);
  }
  if (w.ndim() != 1 || w.size(0) != kHidden) {
    TVM_FFI_THROW(ValueError) << "rmsnorm_h4096: weight must be [4096]";
  }
  if (y.ndim() != 2 || y.size(0) != x.size(0) || y.size(1) != kHidden) {
    TVM_FFI_THROW(ValueError) << "rmsnorm_h4096: output must have hidden_states' shape";
  }
  if (!IsBf16(x) || !IsBf16(w) || !IsBf16(y)) {
    TVM_FFI_THROW(TypeError) << "rmsnorm_h4096: all tensors must be bfloat16";
  }
  for (const tvm::ffi::TensorView* t : {&x, &w, &y}) {
    if (t->device().device_type != kDLCUDA) {
      TVM_FFI_THROW(ValueError) << "rmsnorm_h4096: tensors must be on a CUDA device";
    }
    if (t->stride(-1) != 1 || reinterpret_cast<uintptr_t>(t->data_ptr()) % 16 != 0) {
      TVM_FFI_THROW(ValueError)
          << "rmsnorm_h4096: the hidden dim must be contiguous and 16-byte aligned";
    }
  }
  if (x.stride(0) % kVec != 0 || y.stride(0) % kVec != 0) {
    TVM_FFI_THROW(ValueError) << "rmsnorm_h4096: row strides must be multiples of 8 elements";
  }
}

void RunConfig(tvm::ffi::TensorView hidden_states, tvm::ffi::TensorView weight,
               tvm::ffi::TensorView output, int64_t threads_per_row, int64_t rows_per_block) {
  CheckInputs(hidden_states, weight, output);
  const int64_t n_rows = hidden_states.size(0);
  if (n_rows == 0) return;
  DLDevice dev = hidden_states.device();
  cudaStream_t stream =
      static_cast<cudaStream_t>(TVMFFIEnvGetStream(dev.device_type, dev.device_id));
  auto* x = static_cast<const __nv_bfloat16*>(hidden_states.data_ptr());
  auto* w = static_cast<const __nv_bfloat16*>(weight.data_ptr());
  auto* y = static_cast<__nv_bfloat16*>(output.data_ptr());
  const int64_t xs = hidden_states.stride(0), ys = output.stride(0);

#define RMSNORM_CASE(T, R)                                  \
  if (threads_per_row == T && rows_per_block == R) {        \
    Launch<T, R>(x, xs, w, y, ys, n_rows, stream);          \
  } else
  RMSNORM_CASE(32, 1)
  RMSNORM_CASE(32, 2)
  RMSNORM_CASE(32, 4)
  RMSNORM_CASE(32, 8)
  RMSNORM_CASE(64, 1)
  RMSNORM_CASE(64, 2)
  RMSNORM_CASE(64, 4)
  RMSNORM_CASE(128, 1)
  RMSNORM_CASE(128, 2)
  RMSNORM_CASE(128, 4)
  RMSNORM_CASE(256, 1)
  RMSNORM_CASE(256, 2)
  RMSNORM_CASE(512, 1) {
    TVM_FFI_THROW(ValueError) << "rmsnorm_h4096: unsupported launch config threads_per_row="
                              << threads_per_row << " rows_per_block=" << rows_per_block;
  }
#undef RMSNORM_CASE
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    TVM_FFI_THROW(RuntimeError) << "rmsnorm_h4096: launch failed: " << cudaGetErrorString(err);
  }
}

void Run(tvm::ffi::TensorView hidden_states, tvm::ffi::TensorView weight,
         tvm::ffi::TensorView output) {
  int64_t threads_per_row, rows_per_block;
  PickConfig(hidden_states.ndim() == 2 ? hidden_states.size(0) : 0, &threads_per_row,
             &rows_per_block);
  RunConfig(hidden_states, weight, output, threads_per_row, rows_per_block);
}

TVM_FFI_DLL_EXPORT_TYPED_FUNC(run, Run);
TVM_FFI_DLL_EXPORT_TYPED_FUNC(run_config, RunConfig);

}  // namespace rmsnorm_h4096
