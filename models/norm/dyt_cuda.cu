// Fused DyT CUDA kernels. See dyt_cuda.h for the math; this file opens with how they work:
//  - forward, channels-last (the Transformer case): each thread owns one 16-byte pack of columns
//    (4 fp32 or 8 bf16/fp16 values), holds that pack's weight and bias in registers, and walks the
//    rows with a stride of `rows_per_pass`, two rows per iteration so that two loads are in flight.
//    The grid is sized from the occupancy the kernel achieves (cudaOccupancy*), not a guess.
//  - forward, other layouts (channels-first planes, unaligned or odd widths): grid-stride
//    element-wise kernel over packs when the pointers allow it, else one element per thread.
//  - backward, channels-last: a 2-D grid of (column tile) x (row group) blocks of 32 x 8 threads;
//    each thread owns one pack of columns, walks its row group two rows at a time, writes dx and
//    keeps dw, db and dalpha sums in registers; the block reduces over its 8 row lanes and writes
//    one partial row. A second kernel adds the row groups' partials per column, 32 columns x 8
//    group lanes per block (as Apex's layer-norm backward), and one extra block sums dalpha.
//  - backward, channels-first: one block per (channel, group of images), reducing whole planes.
// tanh is tanhf for fp32 data and the tanh.approx.f32 instruction (sm_75+, |rel err| < 2^-10.9,
// below bf16/fp16 resolution) for 16-bit data. All sums are fp32, in a fixed order: the results
// are bit-identical from run to run on the same device.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "models/norm/dyt_cuda.h"

namespace dyt::cuda {
namespace {

constexpr int kTX = 32, kTY = 8;   // backward rows: threads per block along columns / rows
constexpr int kThreads = 256;      // forward and planes kernels

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("DyT CUDA kernel ") + what + ": " + cudaGetErrorString(e));
}

int sm_count() {
  int dev = 0, n = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  return std::max(n, 1);
}

template <class T> __device__ __forceinline__ float to_f(T v);
template <> __device__ __forceinline__ float to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }
template <class T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }

template <class T> __device__ __forceinline__ float tanh_t(float z) {
  float r;
  asm("tanh.approx.f32 %0, %1;" : "=f"(r) : "f"(z));
  return r;
}
template <> __device__ __forceinline__ float tanh_t<float>(float z) { return tanhf(z); }

template <class T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

// ---- forward ----------------------------------------------------------------------------------
template <class T, int VEC, bool CF>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n_packs, int64_t C, int64_t inner,
                               const float* __restrict__ alpha, const float* __restrict__ w,
                               const float* __restrict__ b) {
  const float a = __ldg(alpha);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < n_packs; p += stride) {
    const int64_t i0 = p * VEC;
    Pack<T, VEC> in = reinterpret_cast<const Pack<T, VEC>*>(x)[p], out;
    if (CF) {
      const int64_t c = (i0 / inner) % C;
      const float wc = __ldg(w + c), bc = __ldg(b + c);
#pragma unroll
      for (int k = 0; k < VEC; ++k) out.v[k] = from_f<T>(wc * tanh_t<T>(a * to_f(in.v[k])) + bc);
    } else {
      const int64_t c0 = i0 % C;
#pragma unroll
      for (int k = 0; k < VEC; ++k)
        out.v[k] = from_f<T>(__ldg(w + c0 + k) * tanh_t<T>(a * to_f(in.v[k])) + __ldg(b + c0 + k));
    }
    reinterpret_cast<Pack<T, VEC>*>(y)[p] = out;
  }
}

// Channels-last forward. Thread g owns column pack j = g % cpr of rows g / cpr, g / cpr + R, ...
// (R = rows_per_pass; the grid has exactly cpr * R threads, rounded up to whole blocks). y is
// stored as TO: T itself, or a 16-bit type under an fp32 x (forward_mixed); the tanh is x's.
template <class T, class TO, int VEC>
__global__ void forward_rows_kernel(const T* __restrict__ x, TO* __restrict__ y, int64_t rows, int64_t cpr,
                                    int64_t rows_per_pass, const float* __restrict__ alpha,
                                    const float* __restrict__ w, const float* __restrict__ b) {
  const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= cpr * rows_per_pass) return;
  const int64_t j = g % cpr;
  const int64_t R = rows_per_pass;
  const float a = __ldg(alpha);
  float wv[VEC], bv[VEC];
#pragma unroll
  for (int k = 0; k < VEC; ++k) wv[k] = __ldg(w + j * VEC + k), bv[k] = __ldg(b + j * VEC + k);
  using P = Pack<T, VEC>;
  using PO = Pack<TO, VEC>;
  const P* xp = reinterpret_cast<const P*>(x);
  PO* yp = reinterpret_cast<PO*>(y);
  int64_t r = g / cpr;
  for (; r + R < rows; r += 2 * R) {
    const P in0 = xp[r * cpr + j];
    const P in1 = xp[(r + R) * cpr + j];
    PO o0, o1;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      o0.v[k] = from_f<TO>(wv[k] * tanh_t<T>(a * to_f(in0.v[k])) + bv[k]);
      o1.v[k] = from_f<TO>(wv[k] * tanh_t<T>(a * to_f(in1.v[k])) + bv[k]);
    }
    yp[r * cpr + j] = o0;
    yp[(r + R) * cpr + j] = o1;
  }
  if (r < rows) {
    const P in0 = xp[r * cpr + j];
    PO o0;
#pragma unroll
    for (int k = 0; k < VEC; ++k) o0.v[k] = from_f<TO>(wv[k] * tanh_t<T>(a * to_f(in0.v[k])) + bv[k]);
    yp[r * cpr + j] = o0;
  }
}

// ---- reductions ---------------------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sum over all threads of the block; the result is valid in thread 0.
__device__ float block_sum(float v, float* smem /* >= 32 floats */) {
  const int tid = threadIdx.x + threadIdx.y * blockDim.x;
  const int nthreads = blockDim.x * blockDim.y;
  v = warp_sum(v);
  __syncthreads();
  if ((tid & 31) == 0) smem[tid >> 5] = v;
  __syncthreads();
  float s = 0.f;
  if (tid == 0)
    for (int i = 0; i < (nthreads + 31) / 32; ++i) s += smem[i];
  return s;
}

// ---- backward, channels-last --------------------------------------------------------------------
// dy is read as TG: T itself, or a 16-bit type under an fp32 x (backward_mixed); dx is T.
template <class T, class TG, int VEC>
__global__ void backward_rows_kernel(const T* __restrict__ x, const TG* __restrict__ dy, T* __restrict__ dx,
                                     int64_t rows, int64_t C, const float* __restrict__ alpha,
                                     const float* __restrict__ w, int64_t rows_per_group,
                                     float* __restrict__ part_w, float* __restrict__ part_b,
                                     float* __restrict__ part_a) {
  __shared__ float sw[kTY][kTX * VEC];
  __shared__ float sb[kTY][kTX * VEC];
  __shared__ float sa[32];
  const float a = __ldg(alpha);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c0 = (static_cast<int64_t>(blockIdx.x) * kTX + tx) * VEC;
  const bool active = c0 < C;
  float aw[VEC], ab[VEC], wv[VEC], acc_a = 0.f;
#pragma unroll
  for (int k = 0; k < VEC; ++k) aw[k] = 0.f, ab[k] = 0.f, wv[k] = active ? __ldg(w + c0 + k) : 0.f;
  const int64_t r_begin = static_cast<int64_t>(blockIdx.y) * rows_per_group;
  const int64_t r_end = min(rows, r_begin + rows_per_group);
  if (active) {
    // VEC divides C whenever VEC > 1 (see backward_t), so pack p of row r is r * cpr + jp.
    using P = Pack<T, VEC>;
    using PG = Pack<TG, VEC>;
    const int64_t cpr = C / VEC, jp = c0 / VEC;
    const P* xp = reinterpret_cast<const P*>(x);
    const PG* gp = reinterpret_cast<const PG*>(dy);
    P* dxp = reinterpret_cast<P*>(dx);
    auto step = [&](const P& xv, const PG& gv, P& out) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        const float xf = to_f(xv.v[k]), g = to_f(gv.v[k]);
        const float t = tanh_t<T>(a * xf);
        const float gs = g * wv[k] * (1.f - t * t);
        acc_a += gs * xf;
        aw[k] += g * t;
        ab[k] += g;
        out.v[k] = from_f<T>(gs * a);
      }
    };
    int64_t r = r_begin + ty;
    for (; r + kTY < r_end; r += 2 * kTY) {  // two rows per iteration: four loads in flight
      const int64_t p0 = r * cpr + jp, p1 = (r + kTY) * cpr + jp;
      const P x0 = xp[p0], x1 = xp[p1];
      const PG g0 = gp[p0], g1 = gp[p1];
      P o0, o1;
      step(x0, g0, o0);
      step(x1, g1, o1);
      if (dx) dxp[p0] = o0, dxp[p1] = o1;
    }
    if (r < r_end) {
      const int64_t p0 = r * cpr + jp;
      P o0;
      step(xp[p0], gp[p0], o0);
      if (dx) dxp[p0] = o0;
    }
  }
#pragma unroll
  for (int k = 0; k < VEC; ++k) sw[ty][tx * VEC + k] = aw[k], sb[ty][tx * VEC + k] = ab[k];
  __syncthreads();
  // Thread (tx, ty) finishes columns tx*VEC + k for k = ty, ty + kTY, ... of this tile.
  for (int k = ty; k < VEC; k += kTY) {
    const int col = tx * VEC + k;
    if (c0 + k < C && active) {
      float s_w = 0.f, s_b = 0.f;
#pragma unroll
      for (int j = 0; j < kTY; ++j) s_w += sw[j][col], s_b += sb[j][col];
      part_w[static_cast<int64_t>(blockIdx.y) * C + c0 + k] = s_w;
      part_b[static_cast<int64_t>(blockIdx.y) * C + c0 + k] = s_b;
    }
  }
  const float s = block_sum(acc_a, sa);
  if (tx == 0 && ty == 0) part_a[static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x] = s;
}

// ---- backward, channels-first -------------------------------------------------------------------
template <class T, int VEC>
__global__ void backward_planes_kernel(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dx,
                                       int64_t outer, int64_t C, int64_t inner, const float* __restrict__ alpha,
                                       const float* __restrict__ w, int64_t n_per_group,
                                       float* __restrict__ part_w, float* __restrict__ part_b,
                                       float* __restrict__ part_a) {
  __shared__ float smem[32];
  const float a = __ldg(alpha);
  const int64_t c = blockIdx.x, g = blockIdx.y;
  const float wc = __ldg(w + c);
  float acc_w = 0.f, acc_b = 0.f, acc_a = 0.f;
  const int64_t n_end = min(outer, (g + 1) * n_per_group);
  const int64_t packs = inner / VEC;
  for (int64_t n = g * n_per_group; n < n_end; ++n) {
    const int64_t base = (n * C + c) * packs;
    for (int64_t q = threadIdx.x; q < packs; q += blockDim.x) {
      Pack<T, VEC> xv = reinterpret_cast<const Pack<T, VEC>*>(x)[base + q];
      Pack<T, VEC> gv = reinterpret_cast<const Pack<T, VEC>*>(dy)[base + q];
      Pack<T, VEC> out;
#pragma unroll
      for (int k = 0; k < VEC; ++k) {
        const float xf = to_f(xv.v[k]), gr = to_f(gv.v[k]);
        const float t = tanh_t<T>(a * xf);
        const float gs = gr * wc * (1.f - t * t);
        acc_a += gs * xf;
        acc_w += gr * t;
        acc_b += gr;
        out.v[k] = from_f<T>(gs * a);
      }
      if (dx) reinterpret_cast<Pack<T, VEC>*>(dx)[base + q] = out;
    }
  }
  const float sw = block_sum(acc_w, smem);
  const float sb = block_sum(acc_b, smem);
  const float sa = block_sum(acc_a, smem);
  if (threadIdx.x == 0) {
    part_w[g * C + c] = sw;
    part_b[g * C + c] = sb;
    part_a[g * C + c] = sa;
  }
}

// dw[c] = sum_g part_w[g][c], db likewise: block (32 columns) x (8 group lanes), one block per
// 32 columns; the last block sums the n_a dalpha partials. Launched with gridDim.x = tiles + 1.
__global__ void finalize_kernel(const float* __restrict__ part_w, const float* __restrict__ part_b, int64_t groups,
                                int64_t C, const float* __restrict__ part_a, int64_t n_a, float* __restrict__ dw,
                                float* __restrict__ db, float* __restrict__ dalpha) {
  __shared__ float sw[kTY][kTX + 1];
  __shared__ float sb[kTY][kTX + 1];
  __shared__ float smem[32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  if (blockIdx.x == gridDim.x - 1) {
    float s = 0.f;
    for (int64_t i = ty * kTX + tx; i < n_a; i += kTX * kTY) s += part_a[i];
    s = block_sum(s, smem);
    if (tx == 0 && ty == 0) *dalpha = s;
    return;
  }
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kTX + tx;
  float s_w = 0.f, s_b = 0.f;
  if (c < C)
    for (int64_t g = ty; g < groups; g += kTY) s_w += part_w[g * C + c], s_b += part_b[g * C + c];
  sw[ty][tx] = s_w;
  sb[ty][tx] = s_b;
  __syncthreads();
  if (ty == 0 && c < C) {
    float tw = 0.f, tb = 0.f;
#pragma unroll
    for (int j = 0; j < kTY; ++j) tw += sw[j][tx], tb += sb[j][tx];
    dw[c] = tw;
    db[c] = tb;
  }
}

// ---- launch plans ---------------------------------------------------------------------------------
template <class T> constexpr int pack_of() { return 16 / static_cast<int>(sizeof(T)); }

bool aligned16(const void* p) { return p == nullptr || (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Resident blocks per SM that `kernel` reaches with `threads` threads, as the hardware reports it
// (registers and shared memory included). Asked once per kernel instance.
template <class K>
int blocks_per_sm(K kernel, int threads) {
  int n = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, 0), "occupancy query");
  return std::max(n, 1);
}

template <class T, class TG, int VEC> int rows_backward_occupancy() {
  static const int n = blocks_per_sm(backward_rows_kernel<T, TG, VEC>, kTX * kTY);
  return n;
}
template <class T, class TO, int VEC> int rows_forward_occupancy() {
  static const int n = blocks_per_sm(forward_rows_kernel<T, TO, VEC>, kThreads);
  return n;
}

struct RowsPlan {
  int64_t tiles, groups, rows_per_group;
};
// One wave of resident blocks: as many row groups as fill every SM at the achieved occupancy,
// each group at least 2 x kTY rows (so the unrolled loop runs), few partial rows to add up.
template <class T, class TG, int VEC>
RowsPlan rows_plan(const Shape& s) {
  const int64_t rows = s.outer, C = s.channels;
  RowsPlan p;
  p.tiles = (C + kTX * VEC - 1) / (kTX * VEC);
  const int64_t target = static_cast<int64_t>(rows_backward_occupancy<T, TG, VEC>()) * sm_count();
  int64_t groups = std::max<int64_t>(1, target / p.tiles);
  groups = std::min(groups, std::max<int64_t>(1, rows / (2 * kTY)));
  p.rows_per_group = (rows + groups - 1) / groups;
  p.groups = std::max<int64_t>(1, (rows + p.rows_per_group - 1) / p.rows_per_group);
  return p;
}

struct PlanesPlan {
  int64_t groups, n_per_group;
};
PlanesPlan planes_plan(const Shape& s) {
  const int64_t target = 8LL * sm_count();
  int64_t groups = std::min(s.outer, std::max<int64_t>(1, (target + s.channels - 1) / s.channels));
  PlanesPlan p;
  p.n_per_group = (s.outer + groups - 1) / groups;
  p.groups = (s.outer + p.n_per_group - 1) / p.n_per_group;
  return p;
}

template <class T>
int64_t workspace_floats_t(const Shape& s) {
  if (s.inner == 1) {
    int64_t most = 0;  // the pack width (1 or V, known only with the pointers) changes the split
    for (const RowsPlan& p : {rows_plan<T, T, 1>(s), rows_plan<T, T, pack_of<T>()>(s)})
      most = std::max(most, 2 * p.groups * s.channels + p.groups * p.tiles);
    return most;
  }
  PlanesPlan p = planes_plan(s);
  return 3 * p.groups * s.channels;
}

void launch_finalize(const float* part_w, const float* part_b, int64_t groups, int64_t C, const float* part_a,
                     int64_t n_a, float* dw, float* db, float* dalpha, cudaStream_t st) {
  const int64_t tiles = (C + kTX - 1) / kTX;
  finalize_kernel<<<static_cast<unsigned>(tiles + 1), dim3(kTX, kTY), 0, st>>>(part_w, part_b, groups, C, part_a,
                                                                               n_a, dw, db, dalpha);
  check(cudaGetLastError(), "finalize launch");
}

template <class T, class TO, int V>
void forward_rows_t(const T* x, TO* y, const Shape& s, const float* alpha, const float* w, const float* b,
                    cudaStream_t st) {
  const int64_t cpr = s.channels / V;
  const int64_t target = static_cast<int64_t>(rows_forward_occupancy<T, TO, V>()) * sm_count() * kThreads;
  const int64_t R = std::max<int64_t>(1, std::min<int64_t>(s.outer, target / cpr));
  const int64_t blocks = (cpr * R + kThreads - 1) / kThreads;
  forward_rows_kernel<T, TO, V><<<static_cast<unsigned>(blocks), kThreads, 0, st>>>(x, y, s.outer, cpr, R, alpha, w, b);
  check(cudaGetLastError(), "forward launch");
}

template <class T>
void forward_t(const T* x, T* y, const Shape& s, const float* alpha, const float* w, const float* b,
               cudaStream_t st) {
  const int64_t n = s.outer * s.channels * s.inner;
  constexpr int V = pack_of<T>();
  const bool cf = s.inner > 1;
  const bool vec = aligned16(x) && aligned16(y) && (cf ? s.inner % V == 0 : s.channels % V == 0);
  if (vec && !cf) {
    forward_rows_t<T, T, V>(x, y, s, alpha, w, b, st);
    return;
  }
  const int64_t packs = vec ? n / V : n;
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((packs + kThreads - 1) / kThreads, 32LL * sm_count()));
  if (vec) forward_kernel<T, V, true><<<blocks, kThreads, 0, st>>>(x, y, packs, s.channels, s.inner, alpha, w, b);
  else if (cf) forward_kernel<T, 1, true><<<blocks, kThreads, 0, st>>>(x, y, packs, s.channels, s.inner, alpha, w, b);
  else forward_kernel<T, 1, false><<<blocks, kThreads, 0, st>>>(x, y, packs, s.channels, s.inner, alpha, w, b);
  check(cudaGetLastError(), "forward launch");
}

template <class T, class TG, int VEC>
void backward_rows_t(const T* x, const TG* dy, T* dx, const Shape& s, const float* alpha, const float* w, float* dw,
                     float* db, float* dalpha, float* ws, cudaStream_t st) {
  RowsPlan p = rows_plan<T, TG, VEC>(s);
  float* part_w = ws;
  float* part_b = part_w + p.groups * s.channels;
  float* part_a = part_b + p.groups * s.channels;
  dim3 grid(static_cast<unsigned>(p.tiles), static_cast<unsigned>(p.groups)), block(kTX, kTY);
  backward_rows_kernel<T, TG, VEC><<<grid, block, 0, st>>>(x, dy, dx, s.outer, s.channels, alpha, w,
                                                          p.rows_per_group, part_w, part_b, part_a);
  check(cudaGetLastError(), "backward launch");
  launch_finalize(part_w, part_b, p.groups, s.channels, part_a, p.groups * p.tiles, dw, db, dalpha, st);
}

template <class T, int VEC>
void backward_planes_t(const T* x, const T* dy, T* dx, const Shape& s, const float* alpha, const float* w, float* dw,
                       float* db, float* dalpha, float* ws, cudaStream_t st) {
  PlanesPlan p = planes_plan(s);
  float* part_w = ws;
  float* part_b = part_w + p.groups * s.channels;
  float* part_a = part_b + p.groups * s.channels;
  dim3 grid(static_cast<unsigned>(s.channels), static_cast<unsigned>(p.groups));
  backward_planes_kernel<T, VEC><<<grid, kThreads, 0, st>>>(x, dy, dx, s.outer, s.channels, s.inner, alpha, w,
                                                           p.n_per_group, part_w, part_b, part_a);
  check(cudaGetLastError(), "backward launch");
  launch_finalize(part_w, part_b, p.groups, s.channels, part_a, p.groups * s.channels, dw, db, dalpha, st);
}

template <class T>
void backward_t(const T* x, const T* dy, T* dx, const Shape& s, const float* alpha, const float* w, float* dw,
                float* db, float* dalpha, float* ws, cudaStream_t st) {
  constexpr int V = pack_of<T>();
  const bool cf = s.inner > 1;
  const bool vec = aligned16(x) && aligned16(dy) && aligned16(dx) && (cf ? s.inner % V == 0 : s.channels % V == 0);
  if (cf) {
    if (vec) backward_planes_t<T, V>(x, dy, dx, s, alpha, w, dw, db, dalpha, ws, st);
    else backward_planes_t<T, 1>(x, dy, dx, s, alpha, w, dw, db, dalpha, ws, st);
  } else {
    if (vec) backward_rows_t<T, T, V>(x, dy, dx, s, alpha, w, dw, db, dalpha, ws, st);
    else backward_rows_t<T, T, 1>(x, dy, dx, s, alpha, w, dw, db, dalpha, ws, st);
  }
}

}  // namespace

int64_t backward_workspace_bytes(const Shape& shape, DType dt) {
  int64_t floats = 0;
  switch (dt) {
    case DType::f32: floats = workspace_floats_t<float>(shape); break;
    case DType::bf16: floats = workspace_floats_t<__nv_bfloat16>(shape); break;
    case DType::f16: floats = workspace_floats_t<__half>(shape); break;
  }
  return floats * static_cast<int64_t>(sizeof(float));
}

void forward(const void* x, void* y, DType dt, const Shape& s, const float* alpha, const float* w, const float* b,
             void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  switch (dt) {
    case DType::f32: return forward_t(static_cast<const float*>(x), static_cast<float*>(y), s, alpha, w, b, st);
    case DType::bf16:
      return forward_t(static_cast<const __nv_bfloat16*>(x), static_cast<__nv_bfloat16*>(y), s, alpha, w, b, st);
    case DType::f16: return forward_t(static_cast<const __half*>(x), static_cast<__half*>(y), s, alpha, w, b, st);
  }
}

void backward(const void* x, const void* dy, void* dx, DType dt, const Shape& s, const float* alpha, const float* w,
              float* dw, float* db, float* dalpha, void* workspace, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  auto ws = static_cast<float*>(workspace);
  switch (dt) {
    case DType::f32:
      return backward_t(static_cast<const float*>(x), static_cast<const float*>(dy), static_cast<float*>(dx), s, alpha,
                        w, dw, db, dalpha, ws, st);
    case DType::bf16:
      return backward_t(static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(dy),
                        static_cast<__nv_bfloat16*>(dx), s, alpha, w, dw, db, dalpha, ws, st);
    case DType::f16:
      return backward_t(static_cast<const __half*>(x), static_cast<const __half*>(dy), static_cast<__half*>(dx), s,
                        alpha, w, dw, db, dalpha, ws, st);
  }
}

// ---- fp32 x with a 16-bit y / dy -------------------------------------------------------------------
bool mixed_supported(const Shape& s, const void* x, const void* y_or_dy, const void* dx) {
  constexpr int V = pack_of<float>();  // 4 fp32 in 16 bytes; the 16-bit side moves 8
  auto aligned8 = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 7u) == 0; };
  return s.inner == 1 && s.channels % V == 0 && aligned16(x) && aligned16(dx) && y_or_dy && aligned8(y_or_dy);
}

void forward_mixed(const float* x, void* y, DType y_dt, const Shape& s, const float* alpha, const float* w,
                   const float* b, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  constexpr int V = pack_of<float>();
  if (y_dt == DType::bf16) forward_rows_t<float, __nv_bfloat16, V>(x, static_cast<__nv_bfloat16*>(y), s, alpha, w, b, st);
  else if (y_dt == DType::f16) forward_rows_t<float, __half, V>(x, static_cast<__half*>(y), s, alpha, w, b, st);
  else forward_rows_t<float, float, V>(x, static_cast<float*>(y), s, alpha, w, b, st);
}

int64_t backward_mixed_workspace_bytes(const Shape& s, DType dy_dt) {
  constexpr int V = pack_of<float>();
  const RowsPlan p = dy_dt == DType::bf16 ? rows_plan<float, __nv_bfloat16, V>(s)
                     : dy_dt == DType::f16 ? rows_plan<float, __half, V>(s)
                                           : rows_plan<float, float, V>(s);
  return (2 * p.groups * s.channels + p.groups * p.tiles) * static_cast<int64_t>(sizeof(float));
}

void backward_mixed(const float* x, const void* dy, DType dy_dt, float* dx, const Shape& s, const float* alpha,
                    const float* w, float* dw, float* db, float* dalpha, void* workspace, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  auto ws = static_cast<float*>(workspace);
  constexpr int V = pack_of<float>();
  if (dy_dt == DType::bf16)
    backward_rows_t<float, __nv_bfloat16, V>(x, static_cast<const __nv_bfloat16*>(dy), dx, s, alpha, w, dw, db, dalpha,
                                             ws, st);
  else if (dy_dt == DType::f16)
    backward_rows_t<float, __half, V>(x, static_cast<const __half*>(dy), dx, s, alpha, w, dw, db, dalpha, ws, st);
  else backward_rows_t<float, float, V>(x, static_cast<const float*>(dy), dx, s, alpha, w, dw, db, dalpha, ws, st);
}

}  // namespace dyt::cuda
