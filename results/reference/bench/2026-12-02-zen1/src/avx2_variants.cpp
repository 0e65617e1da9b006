// AVX2 bf16 forward arithmetic variants, L2-resident rows of 768 (one thread) and a DRAM-sized
// 50432x768 tensor on 2 threads against a plain copy of the same bytes.
//   g++ -O3 -mavx2 -mfma -fopenmp avx2_variants.cpp -o av2 && ./av2
#include <immintrin.h>
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <vector>
#include <algorithm>
using R = __m256;
using I = __m256i;
static inline R set1(float v){return _mm256_set1_ps(v);}
static inline I rne(I u){ // current integer RNE, result in low half
  I add = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(u,16), _mm256_set1_epi32(1)), _mm256_set1_epi32(0x7fff));
  return _mm256_srli_epi32(_mm256_add_epi32(u, add), 16);
}
static inline I rne_hi(I u){ // RNE, result in high half (low half garbage)
  I add = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(u,16), _mm256_set1_epi32(1)), _mm256_set1_epi32(0x7fff));
  return _mm256_add_epi32(u, add);
}
// VAR bits: 1 = rcp+Newton instead of div, 2 = clamp x (no s-min, no saturate), 4 = even/odd layout,
// 8 = packed 16-bit RNE (with even/odd), 16 = no tanh (floor), 32 = round half away
template<int VAR>
__attribute__((noinline)) void fwd(const uint16_t* x, uint16_t* y, int64_t rows, int64_t C, float alpha, const float* wp, const float* bp) {
  const float c = 5.07133f, A2 = alpha*alpha;
  const R P2 = set1(6.705655833e-04f*A2*A2*alpha), P1=set1(1.024177000e-01f*A2*alpha), P0=set1(9.999480247e-01f*alpha);
  const R Q2 = set1(1.281988900e-02f*A2*A2), Q1=set1(4.354324937e-01f*A2), one = set1(1.0f);
  const R S = set1(c*c/A2), CX = set1(c/alpha), NCX = set1(-c/alpha);
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* xs = x + r*C; uint16_t* ys = y + r*C;
    for (int64_t i = 0; i + 16 <= C; i += 16) {
      __builtin_prefetch(reinterpret_cast<const char*>(xs + i) + 1024, 0, 3);
      const I v = _mm256_loadu_si256((const I*)(xs + i));
      R in[2];
      if constexpr (VAR & 4) { in[0] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)); in[1] = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(0xffff0000))); }
      else { const I z = _mm256_setzero_si256(); in[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(z, v)); in[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(z, v)); }
      R out[2];
      for (int h = 0; h < 2; ++h) {
        R xv = in[h], t;
        if constexpr (VAR & 16) t = xv;
        else {
          R s;
          if constexpr (VAR & 2) { xv = _mm256_max_ps(NCX, _mm256_min_ps(CX, xv)); s = _mm256_mul_ps(xv, xv); }
          else s = _mm256_min_ps(_mm256_mul_ps(xv, xv), S);
          R p = _mm256_fmadd_ps(_mm256_fmadd_ps(P2, s, P1), s, P0);
          R q = _mm256_fmadd_ps(_mm256_fmadd_ps(Q2, s, Q1), s, one);
          R d;
          if constexpr (VAR & 1) { R rr = _mm256_rcp_ps(q); rr = _mm256_fmadd_ps(rr, _mm256_fnmadd_ps(q, rr, one), rr); d = _mm256_mul_ps(p, rr); }
          else d = _mm256_div_ps(p, q);
          t = _mm256_mul_ps(xv, d);
          if constexpr (!(VAR & 2)) t = _mm256_max_ps(set1(-1.0f), _mm256_min_ps(one, t));
        }
        out[h] = _mm256_fmadd_ps(_mm256_loadu_ps(wp + i + 8*h), t, _mm256_loadu_ps(bp + i + 8*h));
      }
      I o;
      const I u0 = _mm256_castps_si256(out[0]), u1 = _mm256_castps_si256(out[1]);
      if constexpr (VAR & 32) {
        const I h = _mm256_set1_epi32(0x8000);
        if constexpr (VAR & 4) o = _mm256_blend_epi16(_mm256_srli_epi32(_mm256_add_epi32(u0, h), 16), _mm256_add_epi32(u1, h), 0xAA);
        else o = _mm256_packus_epi32(_mm256_srli_epi32(_mm256_add_epi32(u0, h), 16), _mm256_srli_epi32(_mm256_add_epi32(u1, h), 16));
      } else if constexpr (VAR & 8) {
        const I P = _mm256_blend_epi16(_mm256_srli_epi32(u0, 16), u1, 0xAA);
        const I L = _mm256_blend_epi16(u0, _mm256_slli_epi32(u1, 16), 0xAA);
        const I T = _mm256_adds_epu16(L, _mm256_and_si256(P, _mm256_set1_epi16(1)));
        const I m = _mm256_cmpgt_epi16(_mm256_xor_si256(T, _mm256_set1_epi16((short)0x8000)), _mm256_setzero_si256());
        o = _mm256_sub_epi16(P, m);
      } else if constexpr (VAR & 4) o = _mm256_blend_epi16(rne(u0), rne_hi(u1), 0xAA);
      else o = _mm256_packus_epi32(rne(u0), rne(u1));
      _mm256_storeu_si256((I*)(ys + i), o);
    }
  }
}
template<int VAR> double bench(const uint16_t* x, uint16_t* y, int64_t rows, int64_t C, const float* w, const float* b) {
  double best = 1e30;
  for (int rep = 0; rep < 200; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    fwd<VAR>(x, y, rows, C, 0.5f, w, b);
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  return best / (rows * C / 16.0);
}
template<int VAR> double big(const uint16_t* x, uint16_t* y, int64_t rows, int64_t C, const float* w, const float* b) {
  double best = 1e30;
  for (int rep = 0; rep < 15; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(2)
    { int t = omp_get_thread_num(); int64_t r0 = rows * t / 2, r1 = rows * (t + 1) / 2;
      fwd<VAR>(x + r0 * C, y + r0 * C, r1 - r0, C, 0.5f, w, b); }
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}
double bigcopy(const uint16_t* x, uint16_t* y, int64_t n) {
  double best = 1e30;
  for (int rep = 0; rep < 15; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(2)
    { int t = omp_get_thread_num(); int64_t a = n * t / 2, e = n * (t + 1) / 2; memcpy(y + a, x + a, (e - a) * 2); }
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}
#define ALL(F, ...) F<0>(__VA_ARGS__), F<1>(__VA_ARGS__), F<2>(__VA_ARGS__), F<3>(__VA_ARGS__), F<4>(__VA_ARGS__), F<6>(__VA_ARGS__), F<12>(__VA_ARGS__), F<14>(__VA_ARGS__), F<36>(__VA_ARGS__), F<38>(__VA_ARGS__), F<20>(__VA_ARGS__)
int main() {
  const char* names[] = {"current(div)", "rcp+newton", "clampx", "clampx+rcp", "evenodd", "evenodd+clampx", "evenodd+pack16rne", "eo+pk16+clampx", "eo+halfaway", "eo+halfaway+clampx", "floor(no tanh)"};
  const int NV = 11;
  { const int64_t C = 768, rows = 64;
    std::vector<uint16_t> x(rows*C), y(rows*C);
    std::vector<float> w(C, 1.1f), b(C, 0.1f);
    for (size_t i = 0; i < x.size(); ++i) { float f = (i % 97) / 10.0f - 4.8f; uint32_t u; memcpy(&u, &f, 4); x[i] = u >> 16; }
    for (int round = 0; round < 2; ++round) {
      double r[NV] = {ALL(bench, x.data(), y.data(), rows, C, w.data(), b.data())};
      for (int v = 0; v < NV; ++v) printf("L2  %-20s %.2f ns/16\n", names[v], r[v]);
      printf("\n");
    } }
  { const int64_t C = 768, rows = 50432;
    std::vector<uint16_t> x(rows*C), y(rows*C);
    std::vector<float> w(C, 1.1f), b(C, 0.1f);
    for (size_t i = 0; i < x.size(); ++i) { float f = (i % 97) / 10.0f - 4.8f; uint32_t u; memcpy(&u, &f, 4); x[i] = u >> 16; }
    for (int round = 0; round < 2; ++round) {
      double cp = bigcopy(x.data(), y.data(), rows * C);
      double r[NV] = {ALL(big, x.data(), y.data(), rows, C, w.data(), b.data())};
      printf("DRAM copy %.2f ms\n", cp);
      for (int v = 0; v < NV; ++v) printf("DRAM %-20s %.2f ms  %.2fx copy\n", names[v], r[v], r[v] / cp);
      printf("\n");
    } }
}
