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
  // Round to nearest even (add 0x7fff plus the lowest kept bit); NaN keeps its quieted high half.
  // Returns the bf16 bits in the low half of each 32-bit lane.
  static __m512i round_bf16(reg v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    __m512i qnan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r, qnan);
  }
  static __m256i to_bf16(reg v) { return _mm512_cvtepi32_epi16(round_bf16(v)); }
  // 32 bf16 -> two fp32 vectors: lo = the first 4 of each group of 8 elements, hi = the last 4.
  static void load_bf16_pair(const uint16_t* p, reg& lo, reg& hi) {
    const __m512i v = _mm512_loadu_si512(p), z = _mm512_setzero_si512();
    lo = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, v));
    hi = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, v));
  }
  static void store_bf16_pair(uint16_t* p, reg lo, reg hi) {
    _mm512_storeu_si512(p, _mm512_packus_epi32(round_bf16(lo), round_bf16(hi)));
  }
  static void stream_bf16_pair(uint16_t* p, reg lo, reg hi) {  // p 64-byte aligned
    _mm512_stream_si512(reinterpret_cast<__m512i*>(p), _mm512_packus_epi32(round_bf16(lo), round_bf16(hi)));
  }
  static void store_bf16(uint16_t* p, reg v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), to_bf16(v)); }
  static void stream(float* p, reg v) { _mm512_stream_ps(p, v); }  // p 64-byte aligned
  static void stream_bf16(uint16_t* p, reg v) { _mm256_stream_si256(reinterpret_cast<__m256i*>(p), to_bf16(v)); }
  static void sfence() { _mm_sfence(); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm512_fnmadd_ps(a, b, c); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  // p/q as p times 1/q from the 14-bit estimate and one Newton step, r (2 - q r): rel. err. 2^-28
  // (512-bit division is slow).
  static reg divide(reg p, reg q) {
    const reg r = _mm512_rcp14_ps(q);
    return _mm512_mul_ps(p, _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0f))));
  }
  static float hsum(reg a) { return _mm512_reduce_add_ps(a); }
};

}  // namespace

constexpr Kernels kAvx512Kernels = DyTImpl<Avx512>::table("avx512");

}  // namespace dyt::cpu
