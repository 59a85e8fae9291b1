// Gated Delta Net decode step, k-last state [B, HV, V, K] (Qwen3-Next, TP=4), CUDA via TVM-FFI.
//
// Per (batch b, value head h), with query/key head hk = h / (HV / HQ):
//   g     = exp(-exp(A_log[h]) * softplus(a[b, h] + dt_bias[h]))
//   beta  = sigmoid(b[b, h])
//   S     = g * state[b, h]                                   [V, K] fp32
//   old_v = S @ k          (one dot over K per row v)
//   S'    = S + (beta * (v - old_v))[:, None] * k[None, :]
//   out   = scale * S' @ q                                    [V] -> bf16
//
// Each state row (128 fp32 = 512 bytes) is independent and maps onto one warp: lane l holds
// K elements 4l..4l+3 as one float4, so both dot products are a 4-term FMA chain plus a 5-step
// xor-shuffle all-reduce, with no shared memory and no barrier. A warp handles kRowsPerWarp rows
// and issues all their 16-byte loads before any arithmetic (bytes in flight); a block handles
// kWarps * kRowsPerWarp consecutive rows of one (b, h).
//
// Memory traffic: read + write the state, 128 KiB per (b, h); q, k, v, gates and output < 1 %.
// Bandwidth bound for batch >= ~32. Launch shape (PickConfig): measured on an H200 with
// bench/kernels_gpu.py.
// Plain ld.global / st.global on purpose: the cache-hinted forms (ld.global.nc.L1::no_allocate,
// st.global.cs) measured 3-6 % slower at large batch on an H200 (bench/kernels_gpu.py A/B,
// docs/kernels.md).
//
// Exports: run(q, k, v, state, A_log, a, dt_bias, b, scale, output, new_state)   DPS entry
//          run_config(..., new_state, warps, rows_per_warp)                     explicit shape
// state may be None (zeros), as the definition marks it optional.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/c_env_api.h>
#include <tvm/ffi/function.h>

#include <cmath>
#include <cstdint>

namespace gdn_decode_qk4_v8_d128_k_last {

constexpr int kHQ = 4, kHK = 4, kHV = 8, kDK = 128, kDV = 128;
constexpr int kGroup = kHV / kHQ;
static_assert(kDK == 32 * 4, "one float4 per lane covers a state row");

struct Params {
  const __nv_bfloat16* q;
  int64_t q_sb, q_sh;
  const __nv_bfloat16* k;
  int64_t k_sb, k_sh;
  const __nv_bfloat16* v;
  int64_t v_sb, v_sh;
  const float* state;  // nullptr: zero state
  int64_t s_sb, s_sh, s_sv;
  const float* a_log;
  const __nv_bfloat16* a;
  int64_t a_sb, a_sh;
  const float* dt_bias;
  const __nv_bfloat16* b;
  int64_t b_sb, b_sh;
  __nv_bfloat16* out;
  int64_t o_sb, o_sh;
  float* new_state;
  int64_t n_sb, n_sh, n_sv;
  float scale;
};

__device__ __forceinline__ float4 LoadGlobal(const float* ptr) {
  float4 v;
  asm volatile("ld.global.v4.f32 {%0, %1, %2, %3}, [%4];"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "l"(ptr));
  return v;
}

__device__ __forceinline__ void StoreGlobal(float* ptr, const float4& v) {
  asm volatile("st.global.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(ptr), "f"(v.x), "f"(v.y),
               "f"(v.z), "f"(v.w)
               : "memory");
}

__device__ __forceinline__ float WarpAllSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Four consecutive bf16 values (8 bytes) as fp32.
__device__ __forceinline__ float4 LoadBf16x4(const __nv_bfloat16* ptr) {
  const uint2 raw = *reinterpret_cast<const uint2*>(ptr);
  const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
  const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}

__device__ __forceinline__ float Dot4(const float4& a, const float4& b) {
  return fmaf(a.w, b.w, fmaf(a.z, b.z, fmaf(a.y, b.y, a.x * b.x)));
}

template <int kWarps, int kRowsPerWarp>
__global__ void __launch_bounds__(kWarps * 32) GdnDecodeKernel(const Params p) {
  constexpr int kRowsPerBlock = kWarps * kRowsPerWarp;
  static_assert(kDV % kRowsPerBlock == 0, "a block covers a whole number of row chunks");
  constexpr int kChunks = kDV / kRowsPerBlock;

  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t bh = blockIdx.x / kChunks;
  const int chunk = blockIdx.x % kChunks;
  const int64_t b = bh / kHV;
  const int h = static_cast<int>(bh % kHV);
  const int hk = h / kGroup;
  const int row0 = chunk * kRowsPerBlock + warp * kRowsPerWarp;

  // The state rows first: the long-latency loads, all in flight together.
  float4 s[kRowsPerWarp];
  if (p.state != nullptr) {
    const float* src = p.state + b * p.s_sb + h * p.s_sh + lane * 4;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = LoadGlobal(src + (row0 + r) * p.s_sv);
  } else {
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = make_float4(0.f, 0.f, 0.f, 0.f);
  }
  const float4 kv = LoadBf16x4(p.k + b * p.k_sb + hk * p.k_sh + lane * 4);
  const float4 qv = LoadBf16x4(p.q + b * p.q_sb + hk * p.q_sh + lane * 4);
  float vr[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    vr[r] = __bfloat162float(p.v[b * p.v_sb + h * p.v_sh + row0 + r]);
  }

  // Gates (fp32, same formulas as torch: softplus(x) = x for x > 20, else log1p(exp(x))).
  const float x = __bfloat162float(p.a[b * p.a_sb + h * p.a_sh]) + p.dt_bias[h];
  const float softplus = x > 20.f ? x : log1pf(expf(x));
  const float g = expf(-expf(p.a_log[h]) * softplus);
  const float beta = 1.f / (1.f + expf(-__bfloat162float(p.b[b * p.b_sb + h * p.b_sh])));

  float o[kRowsPerWarp];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    float4 t = make_float4(s[r].x * g, s[r].y * g, s[r].z * g, s[r].w * g);
    const float old_v = WarpAllSum(Dot4(t, kv));
    const float delta = beta * (vr[r] - old_v);
    t.x = fmaf(delta, kv.x, t.x);
    t.y = fmaf(delta, kv.y, t.y);
    t.z = fmaf(delta, kv.z, t.z);
    t.w = fmaf(delta, kv.w, t.w);
    StoreGlobal(p.new_state + b * p.n_sb + h * p.n_sh + (row0 + r) * p.n_sv + lane * 4, t);
    o[r] = WarpAllSum(Dot4(t, qv));
  }
  // Every lane holds every row's sum; lane r writes row r.
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    if (lane == r) p.out[b * p.o_sb + h * p.o_sh + row0 + r] = __float2bfloat16_rn(p.scale * o[r]);
  }
}

template <int kWarps, int kRowsPerWarp>
void Launch(const Params& p, int64_t batch, cudaStream_t stream) {
  constexpr int kChunks = kDV / (kWarps * kRowsPerWarp);
  const int64_t blocks = batch * kHV * kChunks;
  GdnDecodeKernel<kWarps, kRowsPerWarp><<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream>>>(p);
}

// From the H200 sweep (docs/kernels.md). Small batches: 8-row blocks, so enough blocks exist to
// spread the state over the SMs; batch 9-64: 64-row blocks of 8 warps x 8 rows (more loads in
// flight per thread); large batches: back to small blocks (many resident blocks per SM).
void PickConfig(int64_t batch, int64_t* warps, int64_t* rows_per_warp) {
  if (batch <= 8) {
    *warps = 4;
    *rows_per_warp = 2;
  } else if (batch <= 64) {
    *warps = 8;
    *rows_per_warp = 8;
  } else {
    *warps = 4;
    *rows_per_warp = 2;
  }
}

void CheckTensor(const tvm::ffi::TensorView& t, const char* name,
                 std::initializer_list<int64_t> shape, DLDataTypeCode code, int bits) {
  if (t.device().device_type != kDLCUDA) {
    TVM_FFI_THROW(ValueError) << "gdn_decode_qk4_v8_d128_k_last: " << name
                              << " must be on a CUDA device";
  }
  if (t.dtype().code != code || t.dtype().bits != bits || t.dtype().lanes != 1) {
    TVM_FFI_THROW(TypeError) << "gdn_decode_qk4_v8_d128_k_last: " << name << " has the wrong dtype";
  }
  if (t.ndim() != static_cast<int>(shape.size())) {
    TVM_FFI_THROW(ValueError) << "gdn_decode_qk4_v8_d128_k_last: " << name << " must have "
                              << shape.size() << " dims, got " << t.ndim();
  }
  int i = 0;
  for (int64_t d : shape) {
    if (t.size(i) != d) {
      TVM_FFI_THROW(ValueError) << "gdn_decode_qk4_v8_d128_k_last: " << name << " dim " << i
                                << " must be " << d << ", got " << t.size(i);
    }
    ++i;
  }
  if (t.stride(-1) != 1) {
    TVM_FFI_THROW(ValueError) << "gdn_decode_qk4_v8_d128_k_last: " << name
                              << " must be contiguous in its last dim";
  }
}

void RunConfig(tvm::ffi::TensorView q, tvm::ffi::TensorView k, tvm::ffi::TensorView v,
               tvm::ffi::Optional<tvm::ffi::TensorView> state, tvm::ffi::TensorView A_log,
               tvm::ffi::TensorView a, tvm::ffi::TensorView dt_bias, tvm::ffi::TensorView b,
               double scale, tvm::ffi::TensorView output, tvm::ffi::TensorView new_state,
               int64_t warps, int64_t rows_per_warp) {
  const int64_t B = q.ndim() > 0 ? q.size(0) : 0;
  CheckTensor(q, "q", {B, 1, kHQ, kDK}, kDLBfloat, 16);
  CheckTensor(k, "k", {B, 1, kHK, kDK}, kDLBfloat, 16);
  CheckTensor(v, "v", {B, 1, kHV, kDV}, kDLBfloat, 16);
  CheckTensor(A_log, "A_log", {kHV}, kDLFloat, 32);
  CheckTensor(a, "a", {B, 1, kHV}, kDLBfloat, 16);
  CheckTensor(dt_bias, "dt_bias", {kHV}, kDLFloat, 32);
  CheckTensor(b, "b", {B, 1, kHV}, kDLBfloat, 16);
  CheckTensor(output, "output", {B, 1, kHV, kDV}, kDLBfloat, 16);
  CheckTensor(new_state, "new_state", {B, kHV, kDV, kDK}, kDLFloat, 32);
  if (state.has_value()) CheckTensor(state.value(), "state", {B, kHV, kDV, kDK}, kDLFloat, 32);
  // Vector access: q/k rows in 8-byte pieces, state rows in 16-byte pieces.
  auto aligned = [](const tvm::ffi::TensorView& t, int bytes, int64_t elems_per_piece, int dims) {
    if (reinterpret_cast<uintptr_t>(t.data_ptr()) % bytes != 0) return false;
    for (int d = 0; d < dims; ++d) {
      if (t.stride(d) % elems_per_piece != 0) return false;
    }
    return true;
  };
  if (!aligned(q, 8, 4, 3) || !aligned(k, 8, 4, 3) || !aligned(new_state, 16, 4, 3) ||
      (state.has_value() && !aligned(state.value(), 16, 4, 3))) {
    TVM_FFI_THROW(ValueError) << "gdn_decode_qk4_v8_d128_k_last: q/k need 8-byte and state/"
                                 "new_state 16-byte aligned rows";
  }
  if (B == 0) return;
  if (scale == 0.0) scale = 1.0 / std::sqrt(static_cast<double>(kDK));

  Params p;
  p.q = static_cast<const __nv_bfloat16*>(q.data_ptr());
  p.q_sb = q.stride(0);
  p.q_sh = q.stride(2);
  p.k = static_cast<const __nv_bfloat16*>(k.data_ptr());
  p.k_sb = k.stride(0);
  p.k_sh = k.stride(2);
  p.v = static_cast<const __nv_bfloat16*>(v.data_ptr());
  p.v_sb = v.stride(0);
  p.v_sh = v.stride(2);
  if (state.has_value()) {
    const tvm::ffi::TensorView st = state.value();
    p.state = static_cast<const float*>(st.data_ptr());
    p.s_sb = st.stride(0);
    p.s_sh = st.stride(1);
    p.s_sv = st.stride(2);
  } else {
    p.state = nullptr;
    p.s_sb = p.s_sh = p.s_sv = 0;
  }
  p.a_log = static_cast<const float*>(A_log.data_ptr());
  p.a = static_cast<const __nv_bfloat16*>(a.data_ptr());
  p.a_sb = a.stride(0);
  p.a_sh = a.stride(2);
  p.dt_bias = static_cast<const float*>(dt_bias.data_ptr());
  p.b = static_cast<const __nv_bfloat16*>(b.data_ptr());
  p.b_sb = b.stride(0);
  p.b_sh = b.stride(2);
  p.out = static_cast<__nv_bfloat16*>(output.data_ptr());
  p.o_sb = output.stride(0);
  p.o_sh = output.stride(2);
  p.new_state = static_cast<float*>(new_state.data_ptr());
  p.n_sb = new_state.stride(0);
  p.n_sh = new_state.stride(1);
  p.n_sv = new_state.stride(2);
  p.scale = static_cast<float>(scale);

  DLDevice dev = q.device();
  cudaStream_t stream =
      static_cast<cudaStream_t>(TVMFFIEnvGetStream(dev.device_type, dev.device_id));
#define GDN_CASE(W, R)                   \
  if (warps == W && rows_per_warp == R) { \
    Launch<W, R>(p, B, stream);          \
  } else
  GDN_CASE(4, 1)
  GDN_CASE(4, 2)
  GDN_CASE(4, 4)
  GDN_CASE(4, 8)
  GDN_CASE(8, 1)
  GDN_CASE(8, 2)
  GDN_CASE(8, 4)
  GDN_CASE(8, 8) {
    TVM_FFI_THROW(ValueError) << "gdn_decode_qk4_v8_d128_k_last: unsupported launch config warps="
                              << warps << " rows_per_warp=" << rows_per_warp;
  }
#undef GDN_CASE
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    TVM_FFI_THROW(RuntimeError) << "gdn_decode_qk4_v8_d128_k_last: launch failed: "
                                << cudaGetErrorString(err);
  }
}

void Run(tvm::ffi::TensorView q, tvm::ffi::TensorView k, tvm::ffi::TensorView v,
         tvm::ffi::Optional<tvm::ffi::TensorView> state, tvm::ffi::TensorView A_log,
         tvm::ffi::TensorView a, tvm::ffi::TensorView dt_bias, tvm::ffi::TensorView b,
         double scale, tvm::ffi::TensorView output, tvm::ffi::TensorView new_state) {
  int64_t warps, rows_per_warp;
  PickConfig(q.ndim() > 0 ? q.size(0) : 0, &warps, &rows_per_warp);
  RunConfig(q, k, v, state, A_log, a, dt_bias, b, scale, output, new_state, warps, rows_per_warp);
}

TVM_FFI_DLL_EXPORT_TYPED_FUNC(run, Run);
TVM_FFI_DLL_EXPORT_TYPED_FUNC(run_config, RunConfig);

}  // namespace gdn_decode_qk4_v8_d128_k_last
