// AVX2 fp32 DyT forward loop variants (tanh(x) ~ x P(s)/Q(s), degrees (m, n) in s = x^2), against
// glibc memcpy of the same bytes: 50432 x 768 fp32 on 2 threads in 2 MiB (THP) pages, streaming
// ("nt", as the kernels store outputs larger than the L3) and plain stores, best of 15; and 64
// rows of 768 resident in L2 on one thread, best of 300, in ns per vector of 8. Coefficients are
// placeholders (the time does not depend on them).
//   g++ -O3 -mavx2 -mfma -fopenmp fp32_variants.cpp -o fv && ./fv
#include <immintrin.h>
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <vector>
#include <algorithm>
#include <sys/mman.h>
static float* huge(size_t n){ size_t by=((n*4)+(2u<<20)-1)/(2u<<20)*(2u<<20); void* p=aligned_alloc(2u<<20, by); madvise(p, by, MADV_HUGEPAGE); memset(p,0,by); return (float*)p; }
using R = __m256;
static inline R set1(float v){return _mm256_set1_ps(v);}
// VAR bits: 1 x-clamp (no s-min, no +-1 clamp); 2 degree 3; 4 monic Q; 8 no tanh; 16 rcp+Newton; 32 degree 2
template<int VAR, bool NT=false>
__attribute__((noinline)) void fwd(const float* x, float* y, int64_t rows, int64_t C, const float* w, const float* b) {
  constexpr int n = (VAR & 32) ? 2 : (VAR & 2) ? 3 : 4; constexpr int m = (VAR & 64) ? 3 : n;
  R P[5], Q[5];
  for (int k = 0; k < 5; ++k) { P[k] = set1(0.1f / (k + 1)); Q[k] = set1(0.2f / (k + 1)); }
  const R S = set1(70.f), CX = set1(8.6f), NCX = set1(-8.6f), one = set1(1.f), mone = set1(-1.f);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xs = x + r * C; float* ys = y + r * C;
    for (int64_t i = 0; i + 8 <= C; i += 8) {
      __builtin_prefetch(reinterpret_cast<const char*>(xs + i) + 1024, 0, 3);
      R xv = _mm256_loadu_ps(xs + i), t;
      if constexpr (VAR & 8) t = xv;
      else {
        R s;
        if constexpr (VAR & 1) { xv = _mm256_max_ps(NCX, _mm256_min_ps(CX, xv)); s = _mm256_mul_ps(xv, xv); }
        else s = _mm256_min_ps(_mm256_mul_ps(xv, xv), S);
        R p = P[m], q;
        for (int k = m - 1; k >= 0; --k) p = _mm256_fmadd_ps(p, s, P[k]);
        if constexpr (VAR & 4) { q = _mm256_add_ps(s, Q[n - 1]); for (int k = n - 2; k >= 0; --k) q = _mm256_fmadd_ps(q, s, Q[k]); }
        else { q = Q[n]; for (int k = n - 1; k >= 0; --k) q = _mm256_fmadd_ps(q, s, Q[k]); }
        R d;
        if constexpr (VAR & 16) { R rr = _mm256_rcp_ps(q); rr = _mm256_fmadd_ps(rr, _mm256_fnmadd_ps(q, rr, one), rr); d = _mm256_mul_ps(p, rr); }
        else d = _mm256_div_ps(p, q);
        t = _mm256_mul_ps(xv, d);
        if constexpr (!(VAR & 1)) t = _mm256_max_ps(mone, _mm256_min_ps(one, t));
      }
      R o = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), t, _mm256_loadu_ps(b + i));
      if constexpr (NT) _mm256_stream_ps(ys + i, o); else _mm256_storeu_ps(ys + i, o);
    }
  }
}
template<int VAR> double l2(const float* x, float* y, const float* w, const float* b) {
  double best = 1e30;
  for (int rep = 0; rep < 300; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    fwd<VAR>(x, y, 64, 768, w, b);
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best / (64 * 768 / 8) * 1e9;  // ns per vector of 8
}
template<int VAR, bool NT> double dram(const float* x, float* y, int64_t rows, const float* w, const float* b) {
  double best = 1e30;
  for (int rep = 0; rep < 15; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(2)
    { int t = omp_get_thread_num(); int64_t r0 = rows * t / 2, r1 = rows * (t + 1) / 2;
      fwd<VAR, NT>(x + r0 * 768, y + r0 * 768, r1 - r0, 768, w, b); }
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best * 1e3;
}
double copy(const float* x, float* y, int64_t n) {
  double best = 1e30;
  for (int rep = 0; rep < 15; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(2)
    { int t = omp_get_thread_num(); int64_t a = n * t / 2, e = n * (t + 1) / 2; memcpy(y + a, x + a, (e - a) * 4); }
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best * 1e3;
}
#define RUN(V, name) { double d = dram<V, true>(X.data(), Y.data(), rows, w.data(), b.data()); double d2 = dram<V, false>(X.data(), Y.data(), rows, w.data(), b.data()); double l = l2<V>(xs.data(), ys.data(), w.data(), b.data()); \
  std::printf("%-42s dram nt %7.2f ms = %.2fx copy, plain %7.2f ms = %.2fx   L2 %.2f ns/vec\n", name, d, d / c, d2, d2 / c, l); }
int main() {
  const int64_t rows = 50432, C = 768;
  struct { float* p; float* data(){return p;} size_t size(){return 50432ull*768;} float& operator[](size_t i){return p[i];} } X{huge(rows*C)}; float* Yp = huge(rows*C); struct { float* p; float* data(){return p;} size_t size(){return 50432ull*768;} } Y{Yp}; std::vector<float> w(C, 1.1f), b(C, 0.1f), xs(64 * C); float* ysp = (float*)aligned_alloc(64, 64*C*4); struct { float* p; float* data(){return ysp2;} float* ysp2; } ys{nullptr, ysp};
  for (size_t i = 0; i < X.size(); ++i) X[i] = (i % 97) / 10.0f - 4.8f;
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = (i % 97) / 10.0f - 4.8f;
  memset(Y.data(), 0, Y.size() * 4); memset(ysp, 0, 64*C*4);
  for (int round = 0; round < 3; ++round) {
    double c = copy(X.data(), Y.data(), rows * C);
    std::printf("round %d: copy %.2f ms\n", round, c);
    RUN(0, "(4,4): degree 4 as before (s-min, +-1 clamp)");
    RUN(4, "(4,4) monic Q");
    RUN(68, "(3,4) monic Q");
    RUN(2, "(3,3)");
    RUN(6, "(3,3) monic Q: as the kernels now");
    RUN(1, "(4,4), x clamped (inexact saturation)");
    RUN(69, "(3,4) monic, x clamped (inexact sat.)");
    RUN(7, "(3,3) monic, x clamped (inexact sat.)");
    RUN(33, "(2,2), x clamped (inexact sat.)");
    RUN(17, "(4,4), x clamped, rcp + Newton");
    RUN(8, "no tanh (load, affine FMA, store)");
  }
}
