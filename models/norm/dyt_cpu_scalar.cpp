// Portable instantiation of the fused DyT kernels (one lane), and the run-time ISA dispatch.
#include <cmath>
#include <cstdlib>
#include <string>

#include "models/norm/dyt_cpu_impl.h"

namespace dyt::cpu {
namespace {

struct Scalar {
  using reg = float;
  static constexpr int width = 1;
  static reg set1(float v) { return v; }
  static reg load(const float* p) { return *p; }
  static void store(float* p, reg v) { *p = v; }
  static reg load_bf16(const uint16_t* p) { return bf16_to_f32(*p); }
  static void store_bf16(uint16_t* p, reg v) { *p = f32_to_bf16(v); }
  static void stream(float* p, reg v) { store(p, v); }  // never called: one lane is not streamable
  static void stream_bf16(uint16_t* p, reg v) { store_bf16(p, v); }
  static void sfence() {}
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg fmadd(reg a, reg b, reg c) { return a * b + c; }
  static reg fnmadd(reg a, reg b, reg c) { return c - a * b; }
  static reg min(reg a, reg b) { return a < b ? a : b; }  // NaN in either -> b, as x86 minps
  static reg max(reg a, reg b) { return a > b ? a : b; }  // NaN in either -> b, as x86 maxps
  static reg divide(reg p, reg q) { return p / q; }
  static float hsum(reg a) { return a; }
};

}  // namespace

constexpr Kernels kScalarKernels = DyTImpl<Scalar>::table("scalar");

const Kernels* kernels_for(const std::string& isa) {
  __builtin_cpu_init();
  if (isa == "scalar") return &kScalarKernels;
  if (isa == "avx2")
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &kAvx2Kernels : nullptr;
  if (isa == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
               ? &kAvx512Kernels
               : nullptr;
  return nullptr;
}

const Kernels& best_kernels() {
  static const Kernels* chosen = [] {
    const char* forced = std::getenv("DYT_CPU_ISA");
    if (forced && kernels_for(forced)) return kernels_for(forced);
    for (const char* isa : {"avx512", "avx2"})
      if (const Kernels* k = kernels_for(isa)) return k;
    return &kScalarKernels;
  }();
  return *chosen;
}

}  // namespace dyt::cpu
