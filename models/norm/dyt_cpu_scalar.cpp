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

// The bf16 table (Segments::bf16_table) from 2^16 elements per thread: the scalar function costs
// about four times what AVX2's does per element (on Zen 1 the table was 2x faster at 65536
// elements per thread, no faster at 24576).
constexpr Kernels kScalarKernels = DyTImpl<Scalar>::table("scalar", int64_t(1) << 16);

namespace {
bool has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
bool has_avx512bf16() { return has_avx512() && __builtin_cpu_supports("avx512bf16"); }
// The AVX-512 division: DYT_CPU_DIV=div|rcp, else a true division on AMD (see dyt_cpu_avx512.cpp).
int avx512_division() {
  const char* e = std::getenv("DYT_CPU_DIV");
  if (e && std::string(e) == "div") return 1;
  if (e && std::string(e) == "rcp") return 0;
  __builtin_cpu_init();
  return __builtin_cpu_is("amd") ? 1 : 0;
}
}  // namespace

const Kernels* kernels_for(const std::string& isa) {
  __builtin_cpu_init();
  if (isa == "scalar") return &kScalarKernels;
  if (isa == "avx2")
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &kAvx2Kernels : nullptr;
  if (isa == "avx512") return has_avx512() ? &kAvx512Kernels[avx512_division()] : nullptr;
  if (isa == "avx512bf16") return has_avx512bf16() ? &kAvx512Bf16Kernels[avx512_division()] : nullptr;
  return nullptr;
}

std::vector<const Kernels*> runnable_kernels() {
  std::vector<const Kernels*> all{&kScalarKernels};
  if (kernels_for("avx2")) all.push_back(&kAvx2Kernels);
  if (has_avx512()) all.insert(all.end(), {&kAvx512Kernels[0], &kAvx512Kernels[1]});
  if (has_avx512bf16()) all.insert(all.end(), {&kAvx512Bf16Kernels[0], &kAvx512Bf16Kernels[1]});
  return all;
}

const Kernels& best_kernels() {
  static const Kernels* chosen = [] {
    const char* forced = std::getenv("DYT_CPU_ISA");
    if (forced && kernels_for(forced)) return kernels_for(forced);
    for (const char* isa : {"avx512bf16", "avx512", "avx2"})
      if (const Kernels* k = kernels_for(isa)) return k;
    return &kScalarKernels;
  }();
  return *chosen;
}

}  // namespace dyt::cpu
