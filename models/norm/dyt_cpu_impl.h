// Body of the fused DyT CPU kernels, written once over a SIMD type V and instantiated per ISA by
// dyt_cpu_{scalar,avx2,avx512}.cpp. V provides: reg, width, set1, load/store (fp32 and bf16),
// add, sub, mul, fmadd (a*b+c), fnmadd (c-a*b), min, max, divide, hsum; and stream, stream_bf16,
// sfence for streaming stores.
//
// tanh, one rational function over the whole range (no branch, no exp, no select):
//   tanh(x) ~= x * P(s) / Q(s),  s = min(x^2, c^2),  result clamped to [-1, 1].
// Two fits, chosen by the storage type (the output's precision):
//   fp32: P and Q of degree 4 in x^2 (8 FMAs), c = 8.659781, worst relative error 2.8e-7;
//   bf16: P and Q of degree 2 (4 FMAs), c = 5.07133, worst relative error 1.0e-4, 1/20 of bf16's
//         rounding step (2^-9 = 1.95e-3), where eager bf16 DyT rounds t, w*t and w*t+b each once.
// The coefficients are relative-error minimax fits of tanh(x)/x on [0, 7.9053] and [0, 5] (Lawson
// iterations in fp64, rounded to fp32); each clamp is the point past its fit interval where the
// rational first exceeds 1 (by 4e-7 and 1e-5): past it, x P(c^2)/Q(c^2) grows with |x| from there
// (infinities included), so inputs beyond it give exactly +-1. P/Q is a true
// division where the divider is fast and off the FMA ports (scalar, AVX2: measured 7-11% faster
// than the reciprocal estimate and a Newton step on Zen 3, and exact), and with AVX-512 rcp14 and
// one Newton step (rel. err. 2^-28; 512-bit division is slow).
// Multiplying x by P/Q last keeps tiny and subnormal x exact (P(0)/Q(0) = 1). Measured against
// std::tanh over every 4099th float (tests/test_norm.cpp, TanhRelativeError...). NaN stays NaN: x
// carries it to the product (min(NaN, c^2) is c^2, as x86's min keeps its second operand).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>

#include "models/norm/dyt_cpu.h"

namespace dyt::cpu {

template <class V>
struct DyTImpl {
  using R = typename V::reg;
  static constexpr int W = V::width;

  template <DType dt>
  static inline R tanh(R x) {
    if constexpr (dt == DType::f32) {
      const R s = V::min(V::mul(x, x), V::set1(8.659781f * 8.659781f));  // NaN: x carries it
      R p = V::set1(1.541755523e-08f), q = V::set1(8.594765291e-07f);
      p = V::fmadd(p, s, V::set1(2.201649477e-05f)), q = V::fmadd(q, s, V::set1(3.423002781e-04f));
      p = V::fmadd(p, s, V::set1(3.578604665e-03f)), q = V::fmadd(q, s, V::set1(2.619078197e-02f));
      p = V::fmadd(p, s, V::set1(1.345030069e-01f)), q = V::fmadd(q, s, V::set1(4.678362906e-01f));
      p = V::fmadd(p, s, V::set1(1.0f)), q = V::fmadd(q, s, V::set1(1.0f));
      return saturate(V::mul(x, V::divide(p, q)));
    } else {
      const R s = V::min(V::mul(x, x), V::set1(5.07133f * 5.07133f));
      R p = V::set1(6.705655833e-04f), q = V::set1(1.281988900e-02f);
      p = V::fmadd(p, s, V::set1(1.024177000e-01f)), q = V::fmadd(q, s, V::set1(4.354324937e-01f));
      p = V::fmadd(p, s, V::set1(9.999480247e-01f)), q = V::fmadd(q, s, V::set1(1.0f));
      return saturate(V::mul(x, V::divide(p, q)));
    }
  }
  // Clamps to [-1, 1]; NaN stays NaN.
  static inline R saturate(R t) { return V::max(V::set1(-1.0f), V::min(V::set1(1.0f), t)); }

  static inline R load(const void* p, DType dt, int64_t i) {
    return dt == DType::f32 ? V::load(static_cast<const float*>(p) + i)
                            : V::load_bf16(static_cast<const uint16_t*>(p) + i);
  }
  static inline void store(void* p, DType dt, int64_t i, R v) {
    if (dt == DType::f32) V::store(static_cast<float*>(p) + i, v);
    else V::store_bf16(static_cast<uint16_t*>(p) + i, v);
  }
  static inline int64_t esize(DType dt) { return dt == DType::f32 ? 4 : 2; }
  // A full-vector output store: streaming (aligned, past the caches) or ordinary.
  template <DType dt, bool nt>
  static inline void store_out(void* p, int64_t i, R v) {
    if constexpr (nt && dt == DType::f32) V::stream(static_cast<float*>(p) + i, v);
    else if constexpr (nt) V::stream_bf16(static_cast<uint16_t*>(p) + i, v);
    else store(p, dt, i, v);
  }
  // Streaming stores need every vector store aligned: out aligned to a vector and whole vectors
  // per segment (then no segment has a tail).
  static bool streamable(const void* out, DType dt, const Segments& s) {
    return s.stream && W > 1 && out && reinterpret_cast<uintptr_t>(out) % (W * esize(dt)) == 0 && s.len % W == 0;
  }

  // Copies a partial vector into zero-padded scratch so that tails run the same code path.
  struct Tail {
    alignas(64) unsigned char buf[3][W * 4];
    const void* in(int k, const void* base, DType dt, int64_t off, int64_t n) {
      std::memset(buf[k], 0, sizeof(buf[k]));
      std::memcpy(buf[k], static_cast<const char*>(base) + off * esize(dt), n * esize(dt));
      return buf[k];
    }
  };

  template <DType dt>
  static void tanh_array_impl(const float* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) V::store(y + i, tanh<dt>(V::load(x + i)));
    if (i < n) {
      alignas(64) float tmp[W] = {0};
      std::memcpy(tmp, x + i, (n - i) * sizeof(float));
      V::store(tmp, tanh<dt>(V::load(tmp)));
      std::memcpy(y + i, tmp, (n - i) * sizeof(float));
    }
  }
  static void tanh_array(const float* x, float* y, int64_t n, DType dt) {
    if (dt == DType::f32) tanh_array_impl<DType::f32>(x, y, n);
    else tanh_array_impl<DType::bf16>(x, y, n);
  }

  // ---- forward ----------------------------------------------------------------------------------
  // The storage type is a template argument so that the per-element loads and stores carry no
  // run-time branch; forward() and backward() dispatch once per call.
  template <DType dt, bool nt>
  static void forward_impl(const void* x, void* y, const Segments& s, float alpha, const float* w, const float* b,
                           const float* wp = nullptr, const float* bp = nullptr) {
    // Locals, not s.*: the stores through y could alias s as far as the compiler knows, which
    // reloaded s.len and s.channels_first on every vector.
    const R a = V::set1(alpha);
    const int64_t len = s.len, channels = s.channels, end = s.end;
    const bool cf = s.channels_first;
    for (int64_t u = s.begin; u < end; ++u) {
      const int64_t base = u * len;
      R wc = V::set1(0.0f), bc = V::set1(0.0f);
      int64_t i = 0;
      if (cf) {
        const int64_t c = u % channels;
        wc = V::set1(w[c]), bc = V::set1(b[c]);
        for (; i + W <= len; i += W)
          store_out<dt, nt>(y, base + i, V::fmadd(wc, tanh<dt>(V::mul(a, load(x, dt, base + i))), bc));
      } else {
        if constexpr (dt == DType::bf16 && W >= 8) {
          if (wp) {  // two vectors at a time, in the lane order of the unpacking load (see pair_order)
            const auto* xs = static_cast<const uint16_t*>(x);
            auto* ys = static_cast<uint16_t*>(y);
            for (; i + 2 * W <= len; i += 2 * W) {
              R lo, hi;
              V::load_bf16_pair(xs + base + i, lo, hi);
              lo = V::fmadd(V::load(wp + i), tanh<dt>(V::mul(a, lo)), V::load(bp + i));
              hi = V::fmadd(V::load(wp + i + W), tanh<dt>(V::mul(a, hi)), V::load(bp + i + W));
              if constexpr (nt) V::stream_bf16_pair(ys + base + i, lo, hi);
              else V::store_bf16_pair(ys + base + i, lo, hi);
            }
          }
        }
        for (; i + W <= len; i += W)
          store_out<dt, nt>(y, base + i,
                            V::fmadd(V::load(w + i), tanh<dt>(V::mul(a, load(x, dt, base + i))), V::load(b + i)));
      }
      if (i < len) {
        const int64_t n = len - i;
        Tail tl;
        const void* xt = tl.in(0, x, dt, base + i, n);
        if (!cf) {
          wc = V::load(static_cast<const float*>(tl.in(1, w, DType::f32, i, n)));
          bc = V::load(static_cast<const float*>(tl.in(2, b, DType::f32, i, n)));
        }
        alignas(64) unsigned char out[W * 4];
        store(out, dt, 0, V::fmadd(wc, tanh<dt>(V::mul(a, load(xt, dt, 0))), bc));
        std::memcpy(static_cast<char*>(y) + (base + i) * esize(dt), out, n * esize(dt));
      }
    }
  }

  // bf16 rows go two vectors at a time: one unpack per vector widens bf16 to fp32 (instead of a
  // zero-extension and a shift), and one pack rounds two vectors back without a cross-lane
  // permute. The unpacks take, from each group of 8 elements, the first 4 into `lo` and the last
  // 4 into `hi`; the pack undoes it. The weights are put in that order once per call: slot j of
  // a block's `lo` half holds element (j / 4) * 8 + j % 4, slot j of its `hi` half that plus 4.
  static void pair_order(const float* src, float* dst, int64_t n) {
    for (int64_t blk = 0; blk + 2 * W <= n; blk += 2 * W)
      for (int j = 0; j < W; ++j) {
        dst[blk + j] = src[blk + (j / 4) * 8 + j % 4];
        dst[blk + W + j] = src[blk + (j / 4) * 8 + 4 + j % 4];
      }
  }

  static void forward(const void* x, void* y, DType dt, const Segments& s, float alpha, const float* w,
                      const float* b) {
    const bool nt = streamable(y, dt, s);
    std::unique_ptr<float[]> order;  // once per call and thread: the rows share it
    const float* wp = nullptr;
    const float* bp = nullptr;
    if (dt == DType::bf16 && W >= 8 && !s.channels_first && s.len >= 2 * W &&
        (!nt || (s.len % (2 * W) == 0 && reinterpret_cast<uintptr_t>(y) % (4 * W) == 0))) {
      order.reset(new float[2 * s.len]);
      pair_order(w, order.get(), s.len), pair_order(b, order.get() + s.len, s.len);
      wp = order.get(), bp = order.get() + s.len;
    }
    if (nt) forward_dispatch<true>(x, y, dt, s, alpha, w, b, wp, bp);
    else forward_dispatch<false>(x, y, dt, s, alpha, w, b, wp, bp);
    if (nt) V::sfence();  // streaming stores are weakly ordered: drain them before returning
  }
  template <bool nt>
  static void forward_dispatch(const void* x, void* y, DType dt, const Segments& s, float alpha, const float* w,
                               const float* b, const float* wp, const float* bp) {
    if (dt == DType::f32) forward_impl<DType::f32, nt>(x, y, s, alpha, w, b);
    else forward_impl<DType::bf16, nt>(x, y, s, alpha, w, b, wp, bp);
  }

  // ---- backward ---------------------------------------------------------------------------------
  // One vector step; returns dx and accumulates the three sums in registers.
  template <DType dt>
  static inline R bwd_step(R xv, R dyv, R wc, R a, R& acc_alpha, R& acc_w, R& acc_b) {
    R t = tanh<dt>(V::mul(a, xv));
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

  template <DType dt, bool nt>
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
    const int64_t end = s.end;
    for (int64_t r0 = s.begin; r0 < end; r0 += kBlock) {
      const int64_t r1 = r0 + kBlock < end ? r0 + kBlock : end;
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
          R d = bwd_step<dt>(load(x, dt, base + i), load(dy, dt, base + i), V::load(w + i), a, acc_alpha, aw, ab);
          V::store(accw + k * W, aw), V::store(accb + k * W, ab);
          if (dx) store_out<dt, nt>(dx, base + i, d);
        }
        if (i < C) {
          const int64_t n = C - i;
          Tail tl;
          R xv = load(tl.in(0, x, dt, base + i, n), dt, 0);
          R dyv = load(tl.in(1, dy, dt, base + i, n), dt, 0);
          R wv = V::load(static_cast<const float*>(tl.in(2, w, DType::f32, i, n)));
          R aw = V::load(accw + k * W), ab = V::load(accb + k * W);
          R d = bwd_step<dt>(xv, dyv, wv, a, acc_alpha, aw, ab);
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

  template <DType dt, bool nt>
  static void backward_planes(const void* x, const void* dy, void* dx, const Segments& s, float alpha, const float* w,
                              Partials& p) {
    const R a = V::set1(alpha);
    const int64_t len = s.len, channels = s.channels, end = s.end;  // locals: see forward_impl
    for (int64_t u = s.begin; u < end; ++u) {
      const int64_t base = u * len, c = u % channels;
      const R wc = V::set1(w[c]);
      R acc_alpha = V::set1(0.0f), acc_w = V::set1(0.0f), acc_b = V::set1(0.0f);
      int64_t i = 0;
      for (; i + W <= len; i += W) {
        R d = bwd_step<dt>(load(x, dt, base + i), load(dy, dt, base + i), wc, a, acc_alpha, acc_w, acc_b);
        if (dx) store_out<dt, nt>(dx, base + i, d);
      }
      if (i < len) {
        const int64_t n = len - i;
        Tail tl;
        R d = bwd_step<dt>(load(tl.in(0, x, dt, base + i, n), dt, 0), load(tl.in(1, dy, dt, base + i, n), dt, 0), wc, a,
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
    const bool nt = streamable(dx, dt, s);
    if (nt) backward_dispatch<true>(x, dy, dx, dt, s, alpha, w, p);
    else backward_dispatch<false>(x, dy, dx, dt, s, alpha, w, p);
    if (nt) V::sfence();
  }
  template <bool nt>
  static void backward_dispatch(const void* x, const void* dy, void* dx, DType dt, const Segments& s, float alpha,
                                const float* w, Partials& p) {
    if (dt == DType::f32) {
      if (s.channels_first) backward_planes<DType::f32, nt>(x, dy, dx, s, alpha, w, p);
      else backward_rows<DType::f32, nt>(x, dy, dx, s, alpha, w, p);
    } else {
      if (s.channels_first) backward_planes<DType::bf16, nt>(x, dy, dx, s, alpha, w, p);
      else backward_rows<DType::bf16, nt>(x, dy, dx, s, alpha, w, p);
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
