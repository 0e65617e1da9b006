// The real kernel tables (models/norm/dyt_cpu_avx512.cpp, included whole) on L2-resident rows of
// 768, one thread, best of 300, ns per 16 elements: integer vs AVX512-BF16 rounding, rcp14 +
// Newton vs true division. From the repository root (not built by CMake):
//   g++ -O3 -std=c++17 -I. -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx2 -mfma -mf16c \
//     results/reference/bench/2026-12-02-zen4/src/kernel_tables.cpp -o kt && ./kt
#include "models/norm/dyt_cpu_avx512.cpp"
#include <chrono>
#include <vector>
#include <algorithm>
#include <cstdio>
using namespace dyt::cpu;
int main() {
  const int64_t R = 64, C = 768, n = R * C;
  std::vector<uint16_t> x(n), y(n); std::vector<float> xf(n), yf(n);
  for (int64_t i = 0; i < n; ++i) { float f = (i % 97) / 10.0f - 4.8f; uint32_t u; memcpy(&u, &f, 4); x[i] = u >> 16; xf[i] = f; }
  std::vector<float> w(C, 1.1f), b(C, 0.1f);
  for (int isa = 0; isa < 4; ++isa) {
    const Kernels& k = isa < 2 ? kAvx512Bf16Kernels[isa] : kAvx512Kernels[isa - 2];
    for (int d = 0; d < 2; ++d) {
      double best = 1e30;
      for (int rep = 0; rep < 300; ++rep) {
        Segments s{0, R, C, C, false, false};
        auto t0 = std::chrono::steady_clock::now();
        if (d) k.forward(x.data(), y.data(), DType::bf16, s, 0.5f, w.data(), b.data());
        else k.forward(xf.data(), yf.data(), DType::f32, s, 0.5f, w.data(), b.data());
        auto t1 = std::chrono::steady_clock::now();
        best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count());
      }
      printf("%-16s %s %.2f ns/16\n", k.isa, d ? "bf16" : "fp32", best / (n / 16.0));
    }
  }
}
