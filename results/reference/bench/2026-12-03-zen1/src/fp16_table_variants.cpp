// A table of half the size: tanh(alpha x) for every bf16 input stored as fp16 (scaled by 2^14 so
// that values down to 2^-28 stay normal; the scale comes out in one multiply), its values moved
// into vectors by 16-bit stores and one reload, by 32- or 64-bit combinations built in general
// registers, or by pinsrw chains, then vcvtph2ps; against the kernels' fp32 table (8-byte index
// loads, 4-byte stores, two reloads), the loop with no tanh at all, and glibc memcpy. Best of 15,
// 2 MiB pages, the same loop skeleton, input and outputs as table_variants.cpp. Throwaway
// benchmark, not built by the project:
//   g++ -O3 -mavx2 -mfma -mf16c -fopenmp fp16_table_variants.cpp -o hv && ./hv && ./hv 32768 4096
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
static float T[65536] __attribute__((aligned(64)));
static uint16_t H[65536] __attribute__((aligned(64)));
static inline I pack16rne(R a, R b) {
  const I u0 = _mm256_castps_si256(a), u1 = _mm256_castps_si256(b);
  const I P = _mm256_blend_epi16(_mm256_srli_epi32(u0, 16), u1, 0xAA);
  const I L = _mm256_blend_epi16(u0, _mm256_slli_epi32(u1, 16), 0xAA);
  const I Tt = _mm256_adds_epu16(L, _mm256_and_si256(P, _mm256_set1_epi16(1)));
  const I m = _mm256_cmpgt_epi16(_mm256_xor_si256(Tt, _mm256_set1_epi16((short)0x8000)), _mm256_setzero_si256());
  return _mm256_sub_epi16(P, m);
}
template<int VAR>
__attribute__((noinline)) void fwd(const uint16_t* __restrict x, uint16_t* __restrict y, int64_t rows, int64_t C, const float* __restrict wp, const float* __restrict bp) {
  const R sc = _mm256_set1_ps(0x1p-14f);
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* xs = x + r*C; uint16_t* ys = y + r*C;
    for (int64_t i = 0; i + 16 <= C; i += 16) {
      __builtin_prefetch(reinterpret_cast<const char*>(xs + i) + 1024, 0, 3);
      R t0, t1;
      if constexpr (VAR == 0) {  // the kernels: fp32 table, u32 stores
        alignas(32) uint32_t a[16];
        const uint32_t* TU = reinterpret_cast<const uint32_t*>(T);
        for (int g = 0; g < 4; ++g) {
          uint64_t q; memcpy(&q, xs + i + 4 * g, 8);
          a[2*g] = TU[q & 0xffff]; a[2*g+1] = TU[(q >> 32) & 0xffff]; a[8+2*g] = TU[(q >> 16) & 0xffff]; a[9+2*g] = TU[q >> 48];
        }
        t0 = _mm256_load_ps((const float*)a); t1 = _mm256_load_ps((const float*)a + 8);
      } else if constexpr (VAR == 1) {  // fp16 table, u16 stores, one reload
        alignas(32) uint16_t a[16];
        for (int g = 0; g < 4; ++g) {
          uint64_t q; memcpy(&q, xs + i + 4 * g, 8);
          a[2*g] = H[q & 0xffff]; a[2*g+1] = H[(q >> 32) & 0xffff]; a[8+2*g] = H[(q >> 16) & 0xffff]; a[9+2*g] = H[q >> 48];
        }
        const I v = _mm256_load_si256((const I*)a);
        t0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(v)), sc);
        t1 = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(v, 1)), sc);
      } else if constexpr (VAR == 2) {  // fp16 table, u32 combos
        alignas(32) uint32_t a[8];
        for (int g = 0; g < 4; ++g) {
          uint64_t q; memcpy(&q, xs + i + 4 * g, 8);
          a[g] = H[q & 0xffff] | (uint32_t(H[(q >> 32) & 0xffff]) << 16);
          a[4+g] = H[(q >> 16) & 0xffff] | (uint32_t(H[q >> 48]) << 16);
        }
        const I v = _mm256_load_si256((const I*)a);
        t0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(v)), sc);
        t1 = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(v, 1)), sc);
      } else if constexpr (VAR == 3) {  // fp16 table, pinsrw chains
        __m128i e = _mm_setzero_si128(), o = _mm_setzero_si128();
        for (int g = 0; g < 4; ++g) {
          uint64_t q; memcpy(&q, xs + i + 4 * g, 8);
          switch (g) {
            case 0: e = _mm_insert_epi16(e, H[q & 0xffff], 0); e = _mm_insert_epi16(e, H[(q >> 32) & 0xffff], 1); o = _mm_insert_epi16(o, H[(q >> 16) & 0xffff], 0); o = _mm_insert_epi16(o, H[q >> 48], 1); break;
            case 1: e = _mm_insert_epi16(e, H[q & 0xffff], 2); e = _mm_insert_epi16(e, H[(q >> 32) & 0xffff], 3); o = _mm_insert_epi16(o, H[(q >> 16) & 0xffff], 2); o = _mm_insert_epi16(o, H[q >> 48], 3); break;
            case 2: e = _mm_insert_epi16(e, H[q & 0xffff], 4); e = _mm_insert_epi16(e, H[(q >> 32) & 0xffff], 5); o = _mm_insert_epi16(o, H[(q >> 16) & 0xffff], 4); o = _mm_insert_epi16(o, H[q >> 48], 5); break;
            default: e = _mm_insert_epi16(e, H[q & 0xffff], 6); e = _mm_insert_epi16(e, H[(q >> 32) & 0xffff], 7); o = _mm_insert_epi16(o, H[(q >> 16) & 0xffff], 6); o = _mm_insert_epi16(o, H[q >> 48], 7); break;
          }
        }
        t0 = _mm256_mul_ps(_mm256_cvtph_ps(e), sc); t1 = _mm256_mul_ps(_mm256_cvtph_ps(o), sc);
      } else if constexpr (VAR == 4) {  // fp16 table, u64 combos
        alignas(32) uint64_t a[4];
        for (int g = 0; g < 4; g += 2) {
          uint64_t q, p; memcpy(&q, xs + i + 4 * g, 8); memcpy(&p, xs + i + 4 * g + 4, 8);
          a[g/2] = H[q & 0xffff] | (uint64_t(H[(q >> 32) & 0xffff]) << 16) | (uint64_t(H[p & 0xffff]) << 32) | (uint64_t(H[(p >> 32) & 0xffff]) << 48);
          a[2+g/2] = H[(q >> 16) & 0xffff] | (uint64_t(H[q >> 48]) << 16) | (uint64_t(H[(p >> 16) & 0xffff]) << 32) | (uint64_t(H[p >> 48]) << 48);
        }
        const I v = _mm256_load_si256((const I*)a);
        t0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(v)), sc);
        t1 = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(v, 1)), sc);
      } else {  // no tanh
        const I v = _mm256_loadu_si256((const I*)(xs + i));
        t0 = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)); t1 = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(0xffff0000)));
      }
      R o0 = _mm256_fmadd_ps(_mm256_loadu_ps(wp + i), t0, _mm256_loadu_ps(bp + i));
      R o1 = _mm256_fmadd_ps(_mm256_loadu_ps(wp + i + 8), t1, _mm256_loadu_ps(bp + i + 8));
      _mm256_storeu_si256((I*)(ys + i), pack16rne(o0, o1));
    }
  }
}
template<int VAR> double big(const uint16_t* x, uint16_t* y, int64_t rows, int64_t C, const float* w, const float* b, int nth) {
  double best = 1e30;
  for (int rep = 0; rep < 15; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(nth)
    { int t = omp_get_thread_num(); int64_t r0 = rows * t / nth, r1 = rows * (t + 1) / nth;
      fwd<VAR>(x + r0 * C, y + r0 * C, r1 - r0, C, w, b); }
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
  for (int k = 0; k < 65536; ++k) { uint32_t u = uint32_t(k) << 16; float f; memcpy(&f, &u, 4); T[k] = std::tanh(0.5f * f);
    H[k] = _cvtss_sh(T[k] * 0x1p14f, 0); }
  size_t bytes = rows*C*2;
  uint16_t* x = (uint16_t*)aligned_alloc(2<<20, (bytes + (2<<20)) & ~size_t((2<<20)-1));
  uint16_t* y = (uint16_t*)aligned_alloc(2<<20, (bytes + (2<<20)) & ~size_t((2<<20)-1));
  madvise(x, bytes, MADV_HUGEPAGE); madvise(y, bytes, MADV_HUGEPAGE);
  std::vector<float> w(C, 1.1f), b(C, 0.1f);
  uint64_t s = 1;
  for (int64_t i = 0; i < rows*C; ++i) { s = s*6364136223846793005ull + 1442695040888963407ull; float f = float((s >> 40) & 0xffff) / 65536.0f * 8 - 4; uint32_t u; memcpy(&u, &f, 4); x[i] = u >> 16; }
  const char* names[] = {"fp32 table u32 stores", "fp16 u16 stores", "fp16 u32 combos", "fp16 pinsrw", "fp16 u64 combos", "no tanh"};
  for (int round = 0; round < 3; ++round) {
    double cp = bigcopy(x, y, rows * C, nth);
    double r[6] = {big<0>(x,y,rows,C,w.data(),b.data(),nth), big<1>(x,y,rows,C,w.data(),b.data(),nth), big<2>(x,y,rows,C,w.data(),b.data(),nth), big<3>(x,y,rows,C,w.data(),b.data(),nth), big<4>(x,y,rows,C,w.data(),b.data(),nth), big<5>(x,y,rows,C,w.data(),b.data(),nth)};
    printf("%ldx%ld threads %d: copy %.2f ms\n", rows, C, nth, cp);
    for (int v = 0; v < 6; ++v) printf("  %-24s %.2f ms  %.2fx copy\n", names[v], r[v], r[v] / cp);
  }
}
