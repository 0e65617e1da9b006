// Body of the fused DyT CPU kernels, written once over a SIMD type V and instantiated per ISA by
// dyt_cpu_{scalar,avx2,avx512}.cpp. V provides: reg, width, set1, load/store (fp32 and bf16),
// add, sub, mul, div, fmadd (a*b+c), fnmadd (c-a*b), min, abs, copysign, lt_select, hsum.
//
// tanh: fp32 relative error <= 2e-7 against std::tanh over the whole float range:
//   |x| < 0.625: x + x^3 * P(x^2), a degree-4 minimax polynomial (Cephes tanhf coefficients);
//   otherwise:   sign(x) * (1 - 2 / (exp(2|x|) + 1)), |x| clamped at 9.1, where tanh rounds to
//                exactly 1.0f, so large inputs saturate exactly and never overflow; NaN stays NaN.
//   exp: Cody-Waite reduction by ln 2 and a degree-6 polynomial (Cephes expf), then 2^n.
#pragma once

#include <cstdint>
#include <cstring>

#include "models/norm/dyt_cpu.h"

namespace dyt::cpu {

template <class V>
struct DyTImpl {
  using R = typename V::reg;
  static constexpr int W = V::width;

  static inline R exp_pos(R y) {  // y in [0, 18.2] or NaN
    const R log2e = V::set1(1.44269504088896341f);
    R n = V::round(V::mul(y, log2e));
    R r = V::fnmadd(n, V::set1(0.693359375f), y);
    r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);
    R p = V::set1(1.9875691500e-4f);
    p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
    p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
    p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
    p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
    p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
    R r2 = V::mul(r, r);
    p = V::fmadd(p, r2, V::add(r, V::set1(1.0f)));
    return V::ldexp(p, n);
  }

  static inline R tanh(R x) {
    R ax = V::abs(x);
    // Large |x|: 1 - 2 / (e^{2|x|} + 1). min(9.1, ax) keeps NaN (x86 min returns the 2nd operand).
    R z = V::min(V::set1(9.1f), ax);
    R e = exp_pos(V::add(z, z));
    R big = V::sub(V::set1(1.0f), V::div(V::set1(2.0f), V::add(e, V::set1(1.0f))));
    big = V::copysign(big, x);
    // Small |x|: odd polynomial.
    R x2 = V::mul(x, x);
    R p = V::set1(-5.70498872745e-3f);
    p = V::fmadd(p, x2, V::set1(2.06390887954e-2f));
    p = V::fmadd(p, x2, V::set1(-5.37397155531e-2f));
    p = V::fmadd(p, x2, V::set1(1.33314422036e-1f));
    p = V::fmadd(p, x2, V::set1(-3.33332819422e-1f));
    R small = V::fmadd(V::mul(x, x2), p, x);
    return V::lt_select(ax, V::set1(0.625f), small, big);
  }

  static inline R load(const void* p, DType dt, int64_t i) {
    return dt == DType::f32 ? V::load(static_cast<const float*>(p) + i)
                            : V::load_bf16(static_cast<const uint16_t*>(p) + i);
  }
  static inline void store(void* p, DType dt, int64_t i, R v) {
    if (dt == DType::f32) V::store(static_cast<float*>(p) + i, v);
    else V::store_bf16(static_cast<uint16_t*>(p) + i, v);
  }
  static inline int64_t esize(DType dt) { return dt == DType::f32 ? 4 : 2; }

  // Copies a partial vector into zero-padded scratch so that tails run the same code path.
  struct Tail {
    alignas(64) unsigned char buf[3][W * 4];
    const void* in(int k, const void* base, DType dt, int64_t off, int64_t n) {
      std::memset(buf[k], 0, sizeof(buf[k]));
      std::memcpy(buf[k], static_cast<const char*>(base) + off * esize(dt), n * esize(dt));
      return buf[k];
    }
  };

  static void tanh_array(const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) V::store(y + i, tanh(V::load(x + i)));
    if (i < n) {
      alignas(64) float tmp[W] = {0};
      std::memcpy(tmp, x + i, (n - i) * sizeof(float));
      V::store(tmp, tanh(V::load(tmp)));
      std::memcpy(y + i, tmp, (n - i) * sizeof(float));
    }
  }

  // ---- forward ----------------------------------------------------------------------------------
  static void forward(const void* x, void* y, DType dt, const Segments& s, float alpha, const float* w,
                      const float* b) {
    const R a = V::set1(alpha);
    for (int64_t u = s.begin; u < s.end; ++u) {
      const int64_t base = u * s.len;
      R wc, bc;
      if (s.channels_first) {
        int64_t c = u % s.channels;
        wc = V::set1(w[c]), bc = V::set1(b[c]);
      }
      int64_t i = 0;
      for (; i + W <= s.len; i += W) {
        if (!s.channels_first) wc = V::load(w + i), bc = V::load(b + i);
        R t = tanh(V::mul(a, load(x, dt, base + i)));
        store(y, dt, base + i, V::fmadd(wc, t, bc));
      }
      if (i < s.len) {
        const int64_t n = s.len - i;
        Tail tl;
        const void* xt = tl.in(0, x, dt, base + i, n);
        if (!s.channels_first) {
          wc = V::load(static_cast<const float*>(tl.in(1, w, DType::f32, i, n)));
          bc = V::load(static_cast<const float*>(tl.in(2, b, DType::f32, i, n)));
        }
        alignas(64) unsigned char out[W * 4];
        store(out, dt, 0, V::fmadd(wc, tanh(V::mul(a, load(xt, dt, 0))), bc));
        std::memcpy(static_cast<char*>(y) + (base + i) * esize(dt), out, n * esize(dt));
      }
    }
  }

  // ---- backward ---------------------------------------------------------------------------------
  // One vector step; returns dx and accumulates the three sums in registers.
  static inline R bwd_step(R xv, R dyv, R wc, R a, R& acc_alpha, R& acc_w, R& acc_b) {
    R t = tanh(V::mul(a, xv));
    R sech2 = V::fnmadd(t, t, V::set1(1.0f));
    R g = V::mul(dyv, wc);
    R gs = V::mul(g, sech2);
    acc_alpha = V::fmadd(gs, xv, acc_alpha);
    acc_w = V::fmadd(dyv, t, acc_w);
    acc_b = V::add(acc_b, dyv);
    return V::mul(gs, a);
  }

  // Rows are summed into fp32 blocks of kBlock rows, then into the fp64 partials, which bounds
  // the fp32 rounding error of dweight/dbias at any row count.
  static constexpr int64_t kBlock = 64;

  static void backward_rows(const void* x, const void* dy, void* dx, DType dt, const Segments& s, float alpha,
                            const float* w, Partials& p) {
    const int64_t C = s.len;
    const R a = V::set1(alpha);
    const int64_t nvec = (C + W - 1) / W;
    // Per-block fp32 accumulators for dweight / dbias, one register-width slot per vector.
    alignas(64) float bw[4096 + 16], bb[4096 + 16];
    float* heap_w = nullptr;
    float* heap_b = nullptr;
    float* accw = bw;
    float* accb = bb;
    if (nvec * W > 4096) {
      heap_w = new float[nvec * W];
      heap_b = new float[nvec * W];
      accw = heap_w, accb = heap_b;
    }
    for (int64_t r0 = s.begin; r0 < s.end; r0 += kBlock) {
      const int64_t r1 = r0 + kBlock < s.end ? r0 + kBlock : s.end;
      std::memset(accw, 0, nvec * W * sizeof(float));
      std::memset(accb, 0, nvec * W * sizeof(float));
      R acc_alpha = V::set1(0.0f);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t base = r * C;
        int64_t i = 0, k = 0;
        for (; i + W <= C; i += W, ++k) {
          R aw = V::load(accw + k * W), ab = V::load(accb + k * W);
          R d = bwd_step(load(x, dt, base + i), load(dy, dt, base + i), V::load(w + i), a, acc_alpha, aw, ab);
          V::store(accw + k * W, aw), V::store(accb + k * W, ab);
          if (dx) store(dx, dt, base + i, d);
        }
        if (i < C) {
          const int64_t n = C - i;
          Tail tl;
          R xv = load(tl.in(0, x, dt, base + i, n), dt, 0);
          R dyv = load(tl.in(1, dy, dt, base + i, n), dt, 0);
          R wv = V::load(static_cast<const float*>(tl.in(2, w, DType::f32, i, n)));
          R aw = V::load(accw + k * W), ab = V::load(accb + k * W);
          R d = bwd_step(xv, dyv, wv, a, acc_alpha, aw, ab);
          V::store(accw + k * W, aw), V::store(accb + k * W, ab);
          if (dx) {
            alignas(64) unsigned char out[W * 4];
            store(out, dt, 0, d);
            std::memcpy(static_cast<char*>(dx) + (base + i) * esize(dt), out, n * esize(dt));
          }
        }
      }
      for (int64_t c = 0; c < C; ++c) p.dweight[c] += accw[c], p.dbias[c] += accb[c];
      p.dalpha += V::hsum(acc_alpha);
    }
    delete[] heap_w;
    delete[] heap_b;
  }

  static void backward_planes(const void* x, const void* dy, void* dx, DType dt, const Segments& s, float alpha,
                              const float* w, Partials& p) {
    const R a = V::set1(alpha);
    for (int64_t u = s.begin; u < s.end; ++u) {
      const int64_t base = u * s.len, c = u % s.channels;
      const R wc = V::set1(w[c]);
      R acc_alpha = V::set1(0.0f), acc_w = V::set1(0.0f), acc_b = V::set1(0.0f);
      int64_t i = 0;
      for (; i + W <= s.len; i += W) {
        R d = bwd_step(load(x, dt, base + i), load(dy, dt, base + i), wc, a, acc_alpha, acc_w, acc_b);
        if (dx) store(dx, dt, base + i, d);
      }
      if (i < s.len) {
        const int64_t n = s.len - i;
        Tail tl;
        R d = bwd_step(load(tl.in(0, x, dt, base + i, n), dt, 0), load(tl.in(1, dy, dt, base + i, n), dt, 0), wc, a,
                       acc_alpha, acc_w, acc_b);
        if (dx) {
          alignas(64) unsigned char out[W * 4];
          store(out, dt, 0, d);
          std::memcpy(static_cast<char*>(dx) + (base + i) * esize(dt), out, n * esize(dt));
        }
      }
      p.dweight[c] += V::hsum(acc_w);
      p.dbias[c] += V::hsum(acc_b);
      p.dalpha += V::hsum(acc_alpha);
    }
  }

  static void backward(const void* x, const void* dy, void* dx, DType dt, const Segments& s, float alpha,
                       const float* w, Partials& p) {
    if (s.channels_first) backward_planes(x, dy, dx, dt, s, alpha, w, p);
    else backward_rows(x, dy, dx, dt, s, alpha, w, p);
  }

  static Kernels table(const char* isa) { return Kernels{isa, W, &forward, &backward, &tanh_array}; }
};

// bf16 <-> fp32 bit helpers shared by the scalar path and the vector tails.
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32_to_bf16(float f) {  // round to nearest even, NaN kept quiet
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace dyt::cpu
