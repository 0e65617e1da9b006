// AVX-512 instantiation of the fused DyT kernels (16 fp32 lanes). Compiled with -mavx512f/bw/vl/dq.
#include <immintrin.h>

#include "models/norm/dyt_cpu_impl.h"

namespace dyt::cpu {
namespace {

struct Avx512 {
  using reg = __m512;
  static constexpr int width = 16;
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg load_bf16(const uint16_t* p) {
    __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
  }
  static void store_bf16(uint16_t* p, reg v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    __m512i qnan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, qnan);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(r));
  }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_ps(a, b, c); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  // 1/q: the 14-bit estimate and one Newton step, r (2 - q r).
  static reg recip(reg q) {
    const reg r = _mm512_rcp14_ps(q);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0f)));
  }
  static reg abs(reg a) { return _mm512_abs_ps(a); }
  static reg copysign(reg mag, reg sign) {
    const __m512i s = _mm512_set1_epi32(0x80000000);
    // bit-select: (sign & s) | (mag & ~s)
    return _mm512_castsi512_ps(
        _mm512_ternarylogic_epi32(s, _mm512_castps_si512(sign), _mm512_castps_si512(mag), 0xCA));
  }
  static reg lt_select(reg a, reg b, reg x, reg y) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), y, x);
  }
  static float hsum(reg a) { return _mm512_reduce_add_ps(a); }
};

}  // namespace

constexpr Kernels kAvx512Kernels = DyTImpl<Avx512>::table("avx512");

}  // namespace dyt::cpu
