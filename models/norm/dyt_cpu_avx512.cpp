// AVX-512 instantiations of the fused DyT kernels (16 fp32 lanes): `avx512` (F/BW/VL/DQ) and
// `avx512bf16`, the same with AVX512-BF16's conversion instructions. Compiled with
// -mavx512f/bw/vl/dq/bf16; only Avx512Bf16's own members use BF16 instructions, and the dispatch
// (dyt_cpu_scalar.cpp) picks each table only where the processor has what it uses.
#include <immintrin.h>

#include "models/norm/dyt_cpu_impl.h"

namespace dyt::cpu {
namespace {

// kTrueDiv: P/Q by a true division (AMD: Zen 4's divider runs beside the FMA pipes, and a
// 512-bit division there is measured faster than the estimate and its Newton step), or else by
// rcp14 and one Newton step (Intel, where a 512-bit division takes 10 cycles and more).
template <bool kTrueDiv>
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
  // Round to nearest even (add 0x7fff plus the lowest kept bit). No NaN guard, as on AVX2: every
  // NaN the kernels store has a zero low half (DyTImpl::Params).
  // Returns the bf16 bits in the low half of each 32-bit lane.
  static __m512i round_bf16(reg v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  }
  static __m256i to_bf16(reg v) { return _mm512_cvtepi32_epi16(round_bf16(v)); }
  // 32 bf16 -> two fp32 vectors: lo = the first 4 of each group of 8 elements, hi = the last 4.
  static constexpr int pair_source(int j) { return j < 16 ? (j / 4) * 8 + j % 4 : ((j - 16) / 4) * 8 + 4 + j % 4; }
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
  // Else p/q as p times 1/q from the 14-bit estimate and one Newton step, r (2 - q r): rel. err. 2^-28.
  static reg divide(reg p, reg q) {
    if constexpr (kTrueDiv) return _mm512_div_ps(p, q);
    const reg r = _mm512_rcp14_ps(q);
    return _mm512_mul_ps(p, _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0f))));
  }
  static float hsum(reg a) { return _mm512_reduce_add_ps(a); }
};

// Rounding to bf16 with VCVTNE(2)PS2BF16 (Cooper Lake, Sapphire Rapids, Zen 4): one instruction
// for two vectors instead of five integer operations per vector and a pack. Round to nearest even
// as Avx512::round_bf16 (NaN stays NaN, quieted), except that the instruction flushes fp32
// subnormals (|v| < 1.18e-38) to a signed zero.
template <bool kTrueDiv>
struct Avx512Bf16 : Avx512<kTrueDiv> {
  using reg = __m512;
  static __m256i to_bf16(reg v) { return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)); }
  static void store_bf16(uint16_t* p, reg v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), to_bf16(v)); }
  static void stream_bf16(uint16_t* p, reg v) { _mm256_stream_si256(reinterpret_cast<__m256i*>(p), to_bf16(v)); }
  // The pair in load_bf16_pair's order back to memory order: the conversion puts lo's 16 words
  // first and hi's after them; element 8g + r (r < 4) is lo's slot 4g + r, and element 8g + 4 + r
  // is hi's slot 4g + r, i.e. word 16 + 4g + r.
  static __m512i pack_pair(reg lo, reg hi) {
    const __m512i order = _mm512_set_epi16(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8,  //
                                           23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
    return _mm512_permutexvar_epi16(order, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
  }
  static void store_bf16_pair(uint16_t* p, reg lo, reg hi) { _mm512_storeu_si512(p, pack_pair(lo, hi)); }
  static void stream_bf16_pair(uint16_t* p, reg lo, reg hi) {  // p 64-byte aligned
    _mm512_stream_si512(reinterpret_cast<__m512i*>(p), pack_pair(lo, hi));
  }
};

}  // namespace

// [0]: rcp14 + Newton, [1]: true division; kernels_for() picks by vendor.
// The bf16 table (Segments::bf16_table) is not used by default here: no AVX-512 processor has
// timed it yet (DYT_CPU_BF16_TABLE=1 forces it, for `dyt bench norm`).
constexpr Kernels kAvx512Kernels[2] = {DyTImpl<Avx512<false>>::table("avx512", 0),
                                       DyTImpl<Avx512<true>>::table("avx512/div", 0)};
constexpr Kernels kAvx512Bf16Kernels[2] = {DyTImpl<Avx512Bf16<false>>::table("avx512bf16", 0),
                                           DyTImpl<Avx512Bf16<true>>::table("avx512bf16/div", 0)};

}  // namespace dyt::cpu
