// Fused DyT CPU kernels, compiled once per instruction set (dyt_cpu_{scalar,avx2,avx512}.cpp from
// the single body in dyt_cpu_impl.h) and picked at run time from what the processor supports.
// No LibTorch here: the caller (dyt_op.cpp) splits the work over threads and owns the tensors.
//
// Memory layout: x is contiguous and seen as `units` segments of `len` elements.
//   channels-last  (rows):   unit = one token, len = C, parameters vary along the segment.
//   channels-first (planes): unit = one (n, c) plane, len = H*W, parameters constant on it,
//                            channel of unit u is u % C.
// Arithmetic is fp32 for fp32 and bf16 data (bf16 is rounded to nearest-even on store).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dyt::cpu {

enum class DType { f32, bf16 };

struct Segments {
  int64_t begin, end;  // units to process
  int64_t len;         // elements per unit
  int64_t channels;    // C
  bool channels_first;
  // Write y / dx with non-temporal (streaming) stores, past the caches, where the output and the
  // segment length allow aligned vector stores; the caller sets it for outputs that would not
  // stay in the last-level cache anyway. It saves the read of each output line before its write.
  bool stream = false;
  // bf16 kernels (forward and backward): take tanh(alpha x) from a table of all 2^16 bf16 inputs,
  // built per call (and thread) by the same rational function, hence the same bits, instead of
  // evaluating the function per element. It repays its 32768 evaluations on long segments where
  // the function is what bounds the loop; the caller sets it from Kernels::bf16_table_min.
  bool bf16_table = false;
};

// Backward sums of one work chunk. dweight/dbias have C entries, zeroed by the caller.
struct Partials {
  double* dweight;
  double* dbias;
  double dalpha;
};

struct Kernels {
  const char* isa;
  int width;  // fp32 lanes
  // y = w * tanh(alpha * x) + b
  void (*forward)(const void* x, void* y, DType dt, const Segments& s, float alpha, const float* w,
                  const float* b);
  // dx = dy * w * alpha * (1 - t^2); accumulates dweight += dy * t, dbias += dy,
  // dalpha += dy * w * x * (1 - t^2) into p. dx may be null (x does not need a gradient).
  void (*backward)(const void* x, const void* dy, void* dx, DType dt, const Segments& s, float alpha,
                   const float* w, Partials& p);
  // Element-wise tanh(alpha x) computed as the kernels do for storage type dt (for tests).
  void (*tanh)(const float* x, float* y, int64_t n, DType dt, float alpha);
  // fp32 -> bf16 with the kernels' own rounding, through the same stores the forward uses (for
  // tests). Every NaN in x must have a zero low half, as every NaN the kernels store has: the
  // vector roundings rely on it (0x7fffffff would round to -0).
  void (*round_bf16)(const float* x, uint16_t* y, int64_t n);
  // Elements per thread from which this ISA's bf16 kernels are faster with Segments::bf16_table
  // (0: never measured faster, not used unless forced).
  int64_t bf16_table_min;
};

// The best kernels this processor runs; DYT_CPU_ISA=scalar|avx2|avx512|avx512bf16 forces a lower
// one. AVX-512 kernels divide by a true division on AMD processors and by rcp14 + a Newton step
// elsewhere (their isa reads "avx512/div" or "avx512"); DYT_CPU_DIV=div|rcp forces one.
const Kernels& best_kernels();
// The kernels for one ISA, or nullptr when this processor lacks it.
const Kernels* kernels_for(const std::string& isa);
// Every table this processor can run, both AVX-512 divisions included (for tests).
std::vector<const Kernels*> runnable_kernels();

extern const Kernels kScalarKernels;
extern const Kernels kAvx2Kernels;
extern const Kernels kAvx512Kernels[2];      // [0] rcp14 + Newton, [1] true division
extern const Kernels kAvx512Bf16Kernels[2];  // the same with AVX512-BF16's conversions

}  // namespace dyt::cpu
