// The AVX2 kernels compiled from a given models/norm/ (see kernel_ab.sh): forward and backward,
// fp32 and bf16, rows of C channels, 2 OpenMP threads (rows split in halves, as at::parallel_for
// does), 2 MiB pages, streaming stores (as dyt_op.cpp picks them for outputs past the L3), the
// caches flushed (64 MiB written) before each call; best of 15 calls, in ms.
#include <omp.h>
#include <sys/mman.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "models/norm/dyt_cpu.h"
using namespace dyt::cpu;

static void* huge(size_t bytes) {
  const size_t by = (bytes + (2u << 20) - 1) / (2u << 20) * (2u << 20);
  void* p = aligned_alloc(2u << 20, by);
  madvise(p, by, MADV_HUGEPAGE);
  memset(p, 0, by);
  return p;
}

int main() {
  const Kernels& k = kAvx2Kernels;
  const size_t N = 32768ull * 4096;
  float* X = static_cast<float*>(huge(N * 4));
  float* DY = static_cast<float*>(huge(N * 4));
  float* OUT = static_cast<float*>(huge(N * 4));
  float* F = static_cast<float*>(huge(64ull << 20));
  uint16_t* Xh = static_cast<uint16_t*>(huge(N * 2));
  uint16_t* DYh = static_cast<uint16_t*>(huge(N * 2));
  for (size_t i = 0; i < N; ++i) {
    X[i] = (i % 97) / 10.0f - 4.8f, DY[i] = (i % 89) / 50.0f - 0.9f;
    uint32_t u, v;
    memcpy(&u, &X[i], 4), memcpy(&v, &DY[i], 4);
    Xh[i] = u >> 16, DYh[i] = v >> 16;
  }
  std::vector<float> w(4096), b(4096);
  for (int c = 0; c < 4096; ++c) w[c] = 0.5f + (c % 7) / 7.0f, b[c] = (c % 5) / 10.0f - 0.2f;
  auto best = [&](auto&& fn) {
    double t = 1e30;
    for (int rep = 0; rep < 15; ++rep) {
      for (size_t i = 0; i < (64ull << 20) / 4; i += 16) F[i] += 1;
      auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(2)
      fn(omp_get_thread_num());
      t = std::min(t, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return t;
  };
  for (auto [R, C] : {std::pair<long, long>{12608, 384}, {50432, 768}, {32768, 4096}}) {
    for (DType dt : {DType::f32, DType::bf16}) {
      const void* x = dt == DType::f32 ? static_cast<const void*>(X) : Xh;
      const void* dy = dt == DType::f32 ? static_cast<const void*>(DY) : DYh;
      auto seg = [&](int t) { return Segments{R * t / 2, R * (t + 1) / 2, C, C, false, true}; };
      const double f = best([&](int t) { k.forward(x, OUT, dt, seg(t), 0.5f, w.data(), b.data()); });
      const double g = best([&](int t) {
        std::vector<double> dw(C), db(C);
        Partials p{dw.data(), db.data(), 0.0};
        k.backward(x, dy, OUT, dt, seg(t), 0.5f, w.data(), p);
      });
      std::printf("%s %s %ld x %ld: forward %.3f ms, backward %.3f ms\n", VARIANT, dt == DType::f32 ? "fp32" : "bf16", R,
                  C, f, g);
    }
  }
}
