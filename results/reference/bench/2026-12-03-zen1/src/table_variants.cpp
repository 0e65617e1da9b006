// The AVX2 bf16 forward loop (rows of pairs of 8 lanes, even/odd order, w * tanh(alpha x) + b,
// rounded to nearest even on 16-bit lanes) with tanh evaluated by the kernels' bf16 rational
// function, or looked up in a table of all 2^16 bf16 inputs in several ways, or left out, against
// glibc memcpy of the same bytes. Best of 15, 2 MiB pages; the table is filled with std::tanh (the
// timing does not depend on its values). Throwaway benchmark behind models/norm/dyt_cpu_impl.h's
// lookup_pair; not built by the project.
//   g++ -O3 -mavx2 -mfma -fopenmp table_variants.cpp -o tv && ./tv [rows [channels [threads]]]
// Names printed: "poly" the function; "gather" AVX2's vgatherdps on a 32K table (sign applied
// after) or the 64K one; "scalar 64K" 16-bit index loads, values stored to a buffer and reloaded;
// "setr" values inserted into registers by the compiler; "u64 idx" four 8-byte index loads, then
// 8-byte or 4-byte stores of the values, or movss + unpack inserts, or half and half ("hybrid");
// "2 rows" / "1 row nt" the u32-store variant with streaming stores, two rows sharing the w and
// b loads or one, prefetching every 16 or every 32 elements ("pf/32").
#include <immintrin.h>
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <vector>
#include <algorithm>
#include <sys/mman.h>
using R = __m256; using I = __m256i;
static inline R set1(float v){return _mm256_set1_ps(v);}
static float T[65536] __attribute__((aligned(64)));
static inline I pack16rne(R a, R b) {
  const I u0 = _mm256_castps_si256(a), u1 = _mm256_castps_si256(b);
  const I P = _mm256_blend_epi16(_mm256_srli_epi32(u0, 16), u1, 0xAA);
  const I L = _mm256_blend_epi16(u0, _mm256_slli_epi32(u1, 16), 0xAA);
  const I Tt = _mm256_adds_epu16(L, _mm256_and_si256(P, _mm256_set1_epi16(1)));
  const I m = _mm256_cmpgt_epi16(_mm256_xor_si256(Tt, _mm256_set1_epi16((short)0x8000)), _mm256_setzero_si256());
  return _mm256_sub_epi16(P, m);
}
// VAR: 0 poly (kernel's bf16 fit, alpha folded), 1 no tanh, 2 gather 32K table + sign, 3 gather 64K table,
// 4 scalar loads 64K table
template<int VAR>
__attribute__((noinline)) void fwd(const uint16_t* x, uint16_t* y, int64_t rows, int64_t C, float alpha, const float* wp, const float* bp) {
  const double a2 = double(alpha)*alpha;
  const R P2 = set1(5.217837542e-02f*alpha), P1=set1(7.995819569e+00f/a2*alpha), P0=set1(7.805313873e+01f/a2/a2*alpha);
  const R Q1 = set1(3.399454498e+01f/a2), Q0=set1(7.805313873e+01f/a2/a2);
  const R S = set1(5.1159315f*5.1159315f/a2), one = set1(1.0f), mone=set1(-1.0f);
  const I m15 = _mm256_set1_epi32(0x7fff), sgn = _mm256_set1_epi32(0x80000000), m16=_mm256_set1_epi32(0xffff);
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* xs = x + r*C; uint16_t* ys = y + r*C;
    for (int64_t i = 0; i + 16 <= C; i += 16) {
      __builtin_prefetch(reinterpret_cast<const char*>(xs + i) + 1024, 0, 3);
      const I v = _mm256_loadu_si256((const I*)(xs + i));
      R t[2];
      if constexpr (VAR <= 1) {
        R in[2] = {_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(0xffff0000)))};
        for (int h = 0; h < 2; ++h) {
          R xv = in[h];
          if constexpr (VAR == 1) t[h] = xv;
          else {
            R s = _mm256_min_ps(_mm256_mul_ps(xv, xv), S);
            R p = _mm256_fmadd_ps(_mm256_fmadd_ps(P2, s, P1), s, P0);
            R q = _mm256_fmadd_ps(_mm256_add_ps(s, Q1), s, Q0);
            t[h] = _mm256_max_ps(mone, _mm256_min_ps(one, _mm256_mul_ps(xv, _mm256_div_ps(p, q))));
          }
        }
      } else if constexpr (VAR == 2) {
        const I i0 = _mm256_and_si256(v, m15), i1 = _mm256_and_si256(_mm256_srli_epi32(v, 16), m15);
        const I s0 = _mm256_and_si256(_mm256_slli_epi32(v, 16), sgn), s1 = _mm256_and_si256(v, sgn);
        t[0] = _mm256_xor_ps(_mm256_i32gather_ps(T, i0, 4), _mm256_castsi256_ps(s0));
        t[1] = _mm256_xor_ps(_mm256_i32gather_ps(T, i1, 4), _mm256_castsi256_ps(s1));
      } else if constexpr (VAR == 3) {
        t[0] = _mm256_i32gather_ps(T, _mm256_and_si256(v, m16), 4);
        t[1] = _mm256_i32gather_ps(T, _mm256_srli_epi32(v, 16), 4);
      } else if constexpr (VAR == 5 || VAR == 6) {
        uint64_t q[4]; memcpy(q, xs + i, 32);
        auto L = [&](uint64_t k) -> float { if constexpr (VAR == 5) return T[k & 0xffff]; else return T[k & 0x7fff]; };
        t[0] = _mm256_setr_ps(L(q[0]), L(q[0] >> 32), L(q[1]), L(q[1] >> 32), L(q[2]), L(q[2] >> 32), L(q[3]), L(q[3] >> 32));
        t[1] = _mm256_setr_ps(L(q[0] >> 16), L(q[0] >> 48), L(q[1] >> 16), L(q[1] >> 48), L(q[2] >> 16), L(q[2] >> 48), L(q[3] >> 16), L(q[3] >> 48));
        if constexpr (VAR == 6) {
          t[0] = _mm256_xor_ps(t[0], _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(v, 16), sgn)));
          t[1] = _mm256_xor_ps(t[1], _mm256_castsi256_ps(_mm256_and_si256(v, sgn)));
        }
      } else if constexpr (VAR == 7 || VAR == 8) {
        alignas(32) uint32_t a[16];
        const uint32_t* TU = reinterpret_cast<const uint32_t*>(T);
        for (int g = 0; g < 4; ++g) {
          uint64_t q; memcpy(&q, xs + i + 4 * g, 8);
          if constexpr (VAR == 7) {
            uint64_t e = TU[q & 0xffff] | (uint64_t(TU[(q >> 32) & 0xffff]) << 32);
            uint64_t o = TU[(q >> 16) & 0xffff] | (uint64_t(TU[q >> 48]) << 32);
            memcpy(a + 2 * g, &e, 8); memcpy(a + 8 + 2 * g, &o, 8);
          } else {
            a[2*g] = TU[q & 0xffff]; a[2*g+1] = TU[(q >> 32) & 0xffff]; a[8+2*g] = TU[(q >> 16) & 0xffff]; a[9+2*g] = TU[q >> 48];
          }
        }
        t[0] = _mm256_load_ps((const float*)a); t[1] = _mm256_load_ps((const float*)a + 8);
      } else if constexpr (VAR == 9) {
        __m128 e[4], o[4];
        for (int g = 0; g < 4; ++g) {
          uint64_t q; memcpy(&q, xs + i + 4 * g, 8);
          const __m128 a0 = _mm_load_ss(T + (q & 0xffff)), a1 = _mm_load_ss(T + ((q >> 32) & 0xffff));
          const __m128 b0 = _mm_load_ss(T + ((q >> 16) & 0xffff)), b1 = _mm_load_ss(T + (q >> 48));
          e[g] = _mm_unpacklo_ps(a0, a1); o[g] = _mm_unpacklo_ps(b0, b1);
        }
        t[0] = _mm256_set_m128(_mm_movelh_ps(e[2], e[3]), _mm_movelh_ps(e[0], e[1]));
        t[1] = _mm256_set_m128(_mm_movelh_ps(o[2], o[3]), _mm_movelh_ps(o[0], o[1]));
      } else if constexpr (VAR == 10) {
        __m128 e[4]; alignas(32) uint32_t a[8];
        const uint32_t* TU = reinterpret_cast<const uint32_t*>(T);
        for (int g = 0; g < 4; ++g) {
          uint64_t q; memcpy(&q, xs + i + 4 * g, 8);
          e[g] = _mm_unpacklo_ps(_mm_load_ss(T + (q & 0xffff)), _mm_load_ss(T + ((q >> 32) & 0xffff)));
          a[2*g] = TU[(q >> 16) & 0xffff]; a[2*g+1] = TU[q >> 48];
        }
        t[0] = _mm256_set_m128(_mm_movelh_ps(e[2], e[3]), _mm_movelh_ps(e[0], e[1]));
        t[1] = _mm256_load_ps((const float*)a);
      } else {
        alignas(32) float a[16];
        for (int j = 0; j < 8; ++j) { a[j] = T[xs[i + 2*j]]; a[8 + j] = T[xs[i + 2*j + 1]]; }
        t[0] = _mm256_load_ps(a); t[1] = _mm256_load_ps(a + 8);
      }
      R o0 = _mm256_fmadd_ps(_mm256_loadu_ps(wp + i), t[0], _mm256_loadu_ps(bp + i));
      R o1 = _mm256_fmadd_ps(_mm256_loadu_ps(wp + i + 8), t[1], _mm256_loadu_ps(bp + i + 8));
      _mm256_storeu_si256((I*)(ys + i), pack16rne(o0, o1));
    }
  }
}
template <int PF>
__attribute__((noinline)) void fwd2(const uint16_t* __restrict x, uint16_t* __restrict y, int64_t rows, int64_t C, float, const float* __restrict wp, const float* __restrict bp) {
  int64_t r = 0;
  for (; r + 2 <= rows; r += 2) {
    const uint16_t* xs = x + r*C; uint16_t* ys = y + r*C;
    for (int64_t i = 0; i + 16 <= C; i += 16) {
      if (PF || (i & 16) == 0) {
        __builtin_prefetch(reinterpret_cast<const char*>(xs + i) + 1024, 0, 3);
        __builtin_prefetch(reinterpret_cast<const char*>(xs + C + i) + 1024, 0, 3);
      }
      alignas(32) float a[16], c[16];
      for (int g = 0; g < 4; ++g) {
        uint64_t q; memcpy(&q, xs + i + 4 * g, 8);
        a[2*g] = T[q & 0xffff]; a[2*g+1] = T[(q >> 32) & 0xffff]; a[8+2*g] = T[(q >> 16) & 0xffff]; a[9+2*g] = T[q >> 48];
        uint64_t q2; memcpy(&q2, xs + C + i + 4 * g, 8);
        c[2*g] = T[q2 & 0xffff]; c[2*g+1] = T[(q2 >> 32) & 0xffff]; c[8+2*g] = T[(q2 >> 16) & 0xffff]; c[9+2*g] = T[q2 >> 48];
      }
      const R w0 = _mm256_loadu_ps(wp + i), w1 = _mm256_loadu_ps(wp + i + 8), b0 = _mm256_loadu_ps(bp + i), b1 = _mm256_loadu_ps(bp + i + 8);
      _mm256_stream_si256((I*)(ys + i), pack16rne(_mm256_fmadd_ps(w0, _mm256_load_ps(a), b0), _mm256_fmadd_ps(w1, _mm256_load_ps(a + 8), b1)));
      _mm256_stream_si256((I*)(ys + C + i), pack16rne(_mm256_fmadd_ps(w0, _mm256_load_ps(c), b0), _mm256_fmadd_ps(w1, _mm256_load_ps(c + 8), b1)));
    }
  }
}
template <int PF>
__attribute__((noinline)) void fwd1(const uint16_t* __restrict x, uint16_t* __restrict y, int64_t rows, int64_t C, float, const float* __restrict wp, const float* __restrict bp) {
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* xs = x + r*C; uint16_t* ys = y + r*C;
    for (int64_t i = 0; i + 16 <= C; i += 16) {
      if (PF || (i & 16) == 0) __builtin_prefetch(reinterpret_cast<const char*>(xs + i) + 1024, 0, 3);
      alignas(32) float a[16];
      for (int g = 0; g < 4; ++g) {
        uint64_t q; memcpy(&q, xs + i + 4 * g, 8);
        a[2*g] = T[q & 0xffff]; a[2*g+1] = T[(q >> 32) & 0xffff]; a[8+2*g] = T[(q >> 16) & 0xffff]; a[9+2*g] = T[q >> 48];
      }
      _mm256_stream_si256((I*)(ys + i), pack16rne(_mm256_fmadd_ps(_mm256_loadu_ps(wp + i), _mm256_load_ps(a), _mm256_loadu_ps(bp + i)), _mm256_fmadd_ps(_mm256_loadu_ps(wp + i + 8), _mm256_load_ps(a + 8), _mm256_loadu_ps(bp + i + 8))));
    }
  }
}
template<int VAR> double big(const uint16_t* x, uint16_t* y, int64_t rows, int64_t C, const float* w, const float* b, int nth) {
  double best = 1e30;
  for (int rep = 0; rep < 15; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(nth)
    { int t = omp_get_thread_num(); int64_t r0 = rows * t / nth, r1 = rows * (t + 1) / nth;
      if constexpr (VAR == 11) fwd2<1>(x + r0 * C, y + r0 * C, r1 - r0, C, 0.5f, w, b);
      else if constexpr (VAR == 12) fwd2<0>(x + r0 * C, y + r0 * C, r1 - r0, C, 0.5f, w, b);
      else if constexpr (VAR == 13) fwd1<1>(x + r0 * C, y + r0 * C, r1 - r0, C, 0.5f, w, b);
      else if constexpr (VAR == 14) fwd1<0>(x + r0 * C, y + r0 * C, r1 - r0, C, 0.5f, w, b);
      else fwd<VAR>(x + r0 * C, y + r0 * C, r1 - r0, C, 0.5f, w, b); }
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}
double bigcopy(const uint16_t* x, uint16_t* y, int64_t n, int nth) {
  double best = 1e30;
  for (int rep = 0; rep < 15; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(nth)
    { int t = omp_get_thread_num(); int64_t a = n * t / nth, e = n * (t + 1) / nth; memcpy(y + a, x + a, (e - a) * 2); }
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return best;
}
int main(int argc, char** argv) {
  const int64_t C = argc > 2 ? atoi(argv[2]) : 768, rows = argc > 1 ? atoi(argv[1]) : 50432;
  const int nth = argc > 3 ? atoi(argv[3]) : 2;
  for (int k = 0; k < 65536; ++k) { uint32_t u = uint32_t(k) << 16; float f; memcpy(&f, &u, 4); T[k] = std::tanh(0.5f * f); }
  size_t bytes = rows*C*2;
  uint16_t* x = (uint16_t*)aligned_alloc(2<<20, (bytes + (2<<20)) & ~size_t((2<<20)-1));
  uint16_t* y = (uint16_t*)aligned_alloc(2<<20, (bytes + (2<<20)) & ~size_t((2<<20)-1));
  madvise(x, bytes, MADV_HUGEPAGE); madvise(y, bytes, MADV_HUGEPAGE);
  std::vector<float> w(C, 1.1f), b(C, 0.1f);
  uint64_t s = 1;
  for (int64_t i = 0; i < rows*C; ++i) { s = s*6364136223846793005ull + 1442695040888963407ull; float f = float((s >> 40) & 0xffff) / 65536.0f * 8 - 4; uint32_t u; memcpy(&u, &f, 4); x[i] = u >> 16; }
  const char* names[] = {"poly (kernel bf16 fit)", "no tanh", "gather 32K+sign", "gather 64K", "scalar 64K", "setr 64K", "setr 32K+sign", "u64 idx, u64 stores", "u64 idx, u32 stores", "u64 idx, movss+unpck", "hybrid", "2 rows nt", "2 rows nt pf/32", "1 row nt", "1 row nt pf/32"};
  for (int round = 0; round < 3; ++round) {
    double cp = bigcopy(x, y, rows * C, nth);
    double r[15] = {big<0>(x,y,rows,C,w.data(),b.data(),nth), big<1>(x,y,rows,C,w.data(),b.data(),nth), big<2>(x,y,rows,C,w.data(),b.data(),nth), big<3>(x,y,rows,C,w.data(),b.data(),nth), big<4>(x,y,rows,C,w.data(),b.data(),nth), big<5>(x,y,rows,C,w.data(),b.data(),nth), big<6>(x,y,rows,C,w.data(),b.data(),nth), big<7>(x,y,rows,C,w.data(),b.data(),nth), big<8>(x,y,rows,C,w.data(),b.data(),nth), big<9>(x,y,rows,C,w.data(),b.data(),nth), big<10>(x,y,rows,C,w.data(),b.data(),nth), big<11>(x,y,rows,C,w.data(),b.data(),nth), big<12>(x,y,rows,C,w.data(),b.data(),nth), big<13>(x,y,rows,C,w.data(),b.data(),nth), big<14>(x,y,rows,C,w.data(),b.data(),nth)};
    printf("%ldx%ld threads %d: copy %.2f ms\n", rows, C, nth, cp);
    for (int v = 0; v < 15; ++v) printf("  %-24s %.2f ms  %.2fx copy\n", names[v], r[v], r[v] / cp);
  }
}
