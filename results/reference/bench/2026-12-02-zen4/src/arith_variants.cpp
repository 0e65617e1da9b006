// Microbenchmark behind the note's "arithmetic steps" table (not built by CMake): the bf16 forward's
// arithmetic, AVX-512 + AVX512-BF16, in variants (alpha multiplied or folded, rcp14 + Newton or
// a true division, ...) on L2-resident rows of 768, one thread, best of 200, ns per 16 elements.
//   g++ -O3 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma arith_variants.cpp -o av && ./av
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <vector>
#include <algorithm>
using R = __m512;
static inline R set1(float v){return _mm512_set1_ps(v);}
template<int VAR>
__attribute__((noinline)) void fwd(const uint16_t* x, uint16_t* y, int64_t rows, int64_t C, float alpha, const float* wp, const float* bp) {
  const R a = set1(alpha);
  const __m512i order = _mm512_set_epi16(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8, 23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
  // folded coefficients
  const float c2 = 5.07133f*5.07133f;
  const float A2 = alpha*alpha;
  const R P2 = set1(6.705655833e-04f*A2*A2*alpha), P1=set1(1.024177000e-01f*A2*alpha), P0=set1(9.999480247e-01f*alpha);
  const R Q2 = set1(1.281988900e-02f*A2*A2), Q1=set1(4.354324937e-01f*A2);
  const R S = set1(c2/A2);
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* xs = x + r*C; uint16_t* ys = y + r*C;
    for (int64_t i = 0; i + 32 <= C; i += 32) {
      const __m512i v = _mm512_loadu_si512(xs + i), z = _mm512_setzero_si512();
      R in[2] = {_mm512_castsi512_ps(_mm512_unpacklo_epi16(z, v)), _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, v))};
      R out[2];
      for (int h = 0; h < 2; ++h) {
        R xv = in[h];
        R t;
        if constexpr (VAR == 5) { t = xv; }
        else if constexpr (VAR == 8 || VAR == 9) {
          const R cx = set1(5.07133f / alpha);
          R xc = _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), cx), _mm512_min_ps(xv, cx));
          R s = _mm512_mul_ps(xc, xc);
          R p = _mm512_fmadd_ps(_mm512_fmadd_ps(P2, s, P1), s, P0);
          R q = _mm512_fmadd_ps(_mm512_fmadd_ps(Q2, s, Q1), s, set1(1.0f));
          if constexpr (VAR == 8) t = _mm512_mul_ps(xc, _mm512_div_ps(p, q));
          else t = _mm512_mul_ps(_mm512_mul_ps(xc, p), _mm512_rcp14_ps(q));
        }
        else if constexpr (VAR == 1 || VAR == 6 || VAR == 7) {  // folded alpha
          R s = _mm512_min_ps(_mm512_mul_ps(xv, xv), S);
          R p = _mm512_fmadd_ps(_mm512_fmadd_ps(P2, s, P1), s, P0);
          R q = _mm512_fmadd_ps(_mm512_fmadd_ps(Q2, s, Q1), s, set1(1.0f));
          if constexpr (VAR == 6) { t = _mm512_mul_ps(xv, _mm512_div_ps(p, q)); }
          else if constexpr (VAR == 7) { t = _mm512_mul_ps(_mm512_mul_ps(xv, p), _mm512_rcp14_ps(q)); }
          else { R rr = _mm512_rcp14_ps(q); t = _mm512_mul_ps(xv, _mm512_mul_ps(p, _mm512_mul_ps(rr, _mm512_fnmadd_ps(q, rr, set1(2.0f))))); }
          t = _mm512_max_ps(set1(-1.0f), _mm512_min_ps(set1(1.0f), t));
        } else {
          R ax = _mm512_mul_ps(a, xv);
          R s = _mm512_min_ps(_mm512_mul_ps(ax, ax), set1(c2));
          R p = set1(6.705655833e-04f), q = set1(1.281988900e-02f);
          p = _mm512_fmadd_ps(p, s, set1(1.024177000e-01f)), q = _mm512_fmadd_ps(q, s, set1(4.354324937e-01f));
          p = _mm512_fmadd_ps(p, s, set1(9.999480247e-01f)), q = _mm512_fmadd_ps(q, s, set1(1.0f));
          R d;
          if constexpr (VAR == 2) d = _mm512_div_ps(p, q);
          else if constexpr (VAR == 3) d = _mm512_mul_ps(p, _mm512_rcp14_ps(q));
          else { R rr = _mm512_rcp14_ps(q); d = _mm512_mul_ps(p, _mm512_mul_ps(rr, _mm512_fnmadd_ps(q, rr, set1(2.0f)))); }
          t = _mm512_mul_ps(ax, d);
          if constexpr (VAR != 4) t = _mm512_max_ps(set1(-1.0f), _mm512_min_ps(set1(1.0f), t));
        }
        out[h] = _mm512_fmadd_ps(_mm512_loadu_ps(wp + i + 16*h), t, _mm512_loadu_ps(bp + i + 16*h));
      }
      __m512i o = _mm512_permutexvar_epi16(order, (__m512i)_mm512_cvtne2ps_pbh(out[1], out[0]));
      _mm512_storeu_si512(ys + i, o);
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
int main() {
  const int64_t C = 768, rows = 64;
  std::vector<uint16_t> x(rows*C), y(rows*C);
  std::vector<float> w(C, 1.1f), b(C, 0.1f);
  for (size_t i = 0; i < x.size(); ++i) { float f = (i % 97) / 10.0f - 4.8f; uint32_t u; memcpy(&u, &f, 4); x[i] = u >> 16; }
  const char* names[] = {"current", "fold alpha", "true div", "rcp14 only", "no saturate", "no tanh (floor)", "fold+div", "fold+rcp14only", "fold+div+clampx", "fold+rcp+clampx"};
  for (int round = 0; round < 3; ++round) {
    double r[10] = {bench<0>(x.data(), y.data(), rows, C, w.data(), b.data()), bench<1>(x.data(), y.data(), rows, C, w.data(), b.data()),
      bench<2>(x.data(), y.data(), rows, C, w.data(), b.data()), bench<3>(x.data(), y.data(), rows, C, w.data(), b.data()),
      bench<4>(x.data(), y.data(), rows, C, w.data(), b.data()), bench<5>(x.data(), y.data(), rows, C, w.data(), b.data()),
      bench<6>(x.data(), y.data(), rows, C, w.data(), b.data()), bench<7>(x.data(), y.data(), rows, C, w.data(), b.data()), bench<8>(x.data(), y.data(), rows, C, w.data(), b.data()), bench<9>(x.data(), y.data(), rows, C, w.data(), b.data())};
    for (int v = 0; v < 10; ++v) printf("%-18s %.2f ns/16\n", names[v], r[v]);
    printf("\n");
  }
}
