// AVX2 + FMA instantiation of the fused DyT kernels (8 fp32 lanes). Compiled with -mavx2 -mfma.
#include <immintrin.h>

#include "models/norm/dyt_cpu_impl.h"

namespace dyt::cpu {
namespace {

struct Avx2 {
  using reg = __m256;
  static constexpr int width = 8;
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg load_bf16(const uint16_t* p) {
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
  }
  // Round to nearest even: add 0x7fff plus the lowest kept bit, keep the high half. No NaN guard:
  // every NaN the kernels store has a zero low half (DyTImpl::Params), so the addend cannot carry
  // out of it, and the high half is the NaN's own.
  // Returns the bf16 bits in the low half of each 32-bit lane.
  static __m256i round_bf16(reg v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i add = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1)),
                                         _mm256_set1_epi32(0x7fff));
    return _mm256_srli_epi32(_mm256_add_epi32(u, add), 16);
  }
  static __m128i to_bf16(reg v) {
    const __m256i r = round_bf16(v);
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08));
  }
  static void store_bf16(uint16_t* p, reg v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), to_bf16(v)); }
  static void stream(float* p, reg v) { _mm256_stream_ps(p, v); }  // p 32-byte aligned
  static void stream_bf16(uint16_t* p, reg v) { _mm_stream_si128(reinterpret_cast<__m128i*>(p), to_bf16(v)); }
  static void sfence() { _mm_sfence(); }
  // 16 bf16 -> two fp32 vectors: lo = the even elements, hi = the odd ones (each 32-bit word of
  // the load holds an even element in its low half and the next odd one in its high half).
  static constexpr int pair_source(int j) { return j < 8 ? 2 * j : 2 * (j - 8) + 1; }
  static void load_bf16_pair(const uint16_t* p, reg& lo, reg& hi) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    lo = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    hi = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  // The inverse, rounding to nearest even on 16-bit lanes: pt = both vectors' high halves in
  // memory order (the truncated bf16), lw = their low halves beside them; round up where
  // lw + (pt & 1) > 0x8000 (unsigned; the saturating add keeps 0xffff + 1 above it), i.e. where
  // the 32-bit sum u + 0x7fff + lsb carries, as round_bf16 decides it; a carry out of pt wraps
  // as the 32-bit add's does. 9 instructions per 16 elements where unpacks and round_bf16 took
  // 11 (with the degree-2 monic fit, the bf16 forward took a median 0.90-0.93x the time of the
  // earlier kernels on Zen 1 at the two larger shapes, 6 rounds: results/reference/bench/2026-12-02-zen1b/).
  static __m256i pack_pair(reg lo, reg hi) {
    const __m256i u0 = _mm256_castps_si256(lo), u1 = _mm256_castps_si256(hi);
    const __m256i pt = _mm256_blend_epi16(_mm256_srli_epi32(u0, 16), u1, 0xAA);
    const __m256i lw = _mm256_blend_epi16(u0, _mm256_slli_epi32(u1, 16), 0xAA);
    const __m256i t = _mm256_adds_epu16(lw, _mm256_and_si256(pt, _mm256_set1_epi16(1)));
    const __m256i up = _mm256_cmpgt_epi16(_mm256_xor_si256(t, _mm256_set1_epi16(static_cast<short>(0x8000))),
                                          _mm256_setzero_si256());
    return _mm256_sub_epi16(pt, up);  // up is -1 where rounding up
  }
  static void store_bf16_pair(uint16_t* p, reg lo, reg hi) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), pack_pair(lo, hi));
  }
  static void stream_bf16_pair(uint16_t* p, reg lo, reg hi) {  // p 32-byte aligned
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p), pack_pair(lo, hi));
  }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg fnmadd(reg a, reg b, reg c) { return _mm256_fnmadd_ps(a, b, c); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  // A true division: on Zen 3 the divider runs beside the FMA ports, which makes it faster than
  // the 12-bit reciprocal estimate and a Newton step (2^-11.6 and 2^-22), and it is exact.
  static reg divide(reg p, reg q) { return _mm256_div_ps(p, q); }
  static float hsum(reg a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace

// The bf16 table (Segments::bf16_table) from 2^18 elements per thread, where its 32768
// evaluations are at most an eighth of what the function would have cost.
constexpr Kernels kAvx2Kernels = DyTImpl<Avx2>::table("avx2", int64_t(1) << 18);

}  // namespace dyt::cpu
