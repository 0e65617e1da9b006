// Body of the fused DyT CPU kernels, written once over a SIMD type V and instantiated per ISA by
// dyt_cpu_{scalar,avx2,avx512}.cpp. V provides: reg, width, set1, load/store (fp32 and bf16),
// add, sub, mul, fmadd (a*b+c), fnmadd (c-a*b), min, max, abs, copysign, lt_select, recip, hsum.
//
// tanh, one rational function over the whole range (no second branch, no exp): with x clamped to
// [-7.905311, 7.905311] (where tanh rounds to 1 in fp32),
//   tanh(x) ~= x * P(x^2) / Q(x^2),  P of degree 6, Q of degree 3 in x^2,
// a minimax fit whose coefficients are the ones Eigen's fast float tanh publishes; 1/Q comes from
// the ISA's reciprocal estimate and one Newton step (rel. err 2^-28 with AVX-512's rcp14, 2^-22
// with AVX2's rcp); below 4e-4, tanh(x) = x. Measured against std::tanh over every 4099th float
// (tests/test_norm.cpp, TanhRelativeError...): relative error <= 5e-7 with every ISA, below fp32
// training noise and far below bf16's 2^-8. Inputs beyond the clamp saturate to exactly +-1 (where
// tanh is within 2.7e-7 of 1); NaN stays NaN (min/max keep their second operand when the first is
// NaN, as x86's do).
#pragma once

#include <cstdint>
#include <cstring>

#include "models/norm/dyt_cpu.h"

namespace dyt::cpu {

template <class V>
struct DyTImpl {
  using R = typename V::reg;
  static constexpr int W = V::width;

  static inline R tanh(R x) {
    const R c = V::set1(7.90531110763549805f);
    const R xc = V::max(V::set1(-7.90531110763549805f), V::min(c, x));  // NaN passes through
    const R x2 = V::mul(xc, xc);
    R p = V::set1(-2.76076847742355e-16f);
    p = V::fmadd(p, x2, V::set1(2.00018790482477e-13f));
    p = V::fmadd(p, x2, V::set1(-8.60467152213735e-11f));
    p = V::fmadd(p, x2, V::set1(5.12229709037114e-08f));
    p = V::fmadd(p, x2, V::set1(1.48572235717979e-05f));
    p = V::fmadd(p, x2, V::set1(6.37261928875436e-04f));
    p = V::fmadd(p, x2, V::set1(4.89352455891786e-03f));
    p = V::mul(p, xc);
    R q = V::set1(1.19825839466702e-06f);
    q = V::fmadd(q, x2, V::set1(1.18534705686654e-04f));
    q = V::fmadd(q, x2, V::set1(2.26843463243900e-03f));
    q = V::fmadd(q, x2, V::set1(4.89352518554385e-03f));
    R t = V::mul(p, V::recip(q));
    // |x| < 4e-4: tanh(x) = x within 5.3e-8 (the rational loses precision on subnormal x^2);
    // |x| > clamp: exactly +-1. Both comparisons are false for NaN, which keeps t = NaN.
    const R ax = V::abs(x);
    t = V::lt_select(ax, V::set1(4e-4f), x, t);
    return V::lt_select(c, ax, V::copysign(V::set1(1.0f), x), t);
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
  // The storage type is a template argument so that the per-element loads and stores carry no
  // run-time branch; forward() and backward() dispatch once per call.
  template <DType dt>
  static void forward_impl(const void* x, void* y, const Segments& s, float alpha, const float* w, const float* b) {
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

  static void forward(const void* x, void* y, DType dt, const Segments& s, float alpha, const float* w,
                      const float* b) {
    if (dt == DType::f32) forward_impl<DType::f32>(x, y, s, alpha, w, b);
    else forward_impl<DType::bf16>(x, y, s, alpha, w, b);
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

  template <DType dt>
  static void backward_rows(const void* x, const void* dy, void* dx, const Segments& s, float alpha, const float* w,
                            Partials& p) {
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
      for (int64_t r = r0; r < r1; ++r) {
        // dalpha sums a whole row's products: each row's fp32 register sum goes into the fp64
        // partial, so a one-lane (scalar) build is as accurate as a 16-lane one.
        R acc_alpha = V::set1(0.0f);
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
        p.dalpha += V::hsum(acc_alpha);
      }
      for (int64_t c = 0; c < C; ++c) p.dweight[c] += accw[c], p.dbias[c] += accb[c];
    }
    delete[] heap_w;
    delete[] heap_b;
  }

  template <DType dt>
  static void backward_planes(const void* x, const void* dy, void* dx, const Segments& s, float alpha, const float* w,
                              Partials& p) {
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
    if (dt == DType::f32) {
      if (s.channels_first) backward_planes<DType::f32>(x, dy, dx, s, alpha, w, p);
      else backward_rows<DType::f32>(x, dy, dx, s, alpha, w, p);
    } else {
      if (s.channels_first) backward_planes<DType::bf16>(x, dy, dx, s, alpha, w, p);
      else backward_rows<DType::bf16>(x, dy, dx, s, alpha, w, p);
    }
  }

  // A constant expression: the per-ISA tables are constant-initialised, so no code compiled for
  // AVX2/AVX-512 runs while the program loads (a processor without them must still start).
  static constexpr Kernels table(const char* isa) { return Kernels{isa, W, &forward, &backward, &tanh_array}; }
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
