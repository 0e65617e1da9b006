// Body of the fused DyT CPU kernels, written once over a SIMD type V and instantiated per ISA by
// dyt_cpu_{scalar,avx2,avx512}.cpp. V provides: reg, width, set1, load/store (fp32 and bf16),
// add, sub, mul, fmadd (a*b+c), fnmadd (c-a*b), min, max, divide, hsum; and stream, stream_bf16,
// sfence for streaming stores.
//
// tanh, one rational function over the whole range (no branch, no exp, no select):
//   tanh(x) ~= x * P(s) / Q(s),  s = min(x^2, c^2),  result clamped to [-1, 1],
// with Q monic (its leading coefficient 1), so that Q's first Horner step is an add, not an FMA.
// Two fits, chosen by the storage type (the output's precision):
//   fp32: P and Q of degree 3 in x^2 (5 FMAs and an add), c = 7.10024, worst relative error
//         1.44e-6 (2^-19.4; a training step's own roundings, of bf16 or TF32
//         matmul inputs, are 2^-9 to 2^-11);
//   bf16: P and Q of degree 2 (3 FMAs and an add), c = 5.1159315, worst relative error 7.2e-5,
//         1/27 of bf16's rounding step (2^-9 = 1.95e-3), where eager bf16 DyT rounds t, w*t and
//         w*t+b each once.
// (Until 2026-12-02 the fp32 fit had degree 4, 8 FMAs and 2.8e-7: on half-rate AVX2, Zen 1, the
// forward was compute-bound at 1.15-1.33x a copy; three FMAs fewer per vector bring it to
// 1.04-1.11x there. results/reference/bench/2026-12-02-zen1b/ has the measurements.)
// The coefficients are relative-error minimax fits of tanh(x)/x on [0, 7.1] and [0, 5.1] with
// P(0) = Q(0) = 1 (Lawson iterations on the linearised error in fp64; then divided by Q's leading
// coefficient and rounded to fp32, so that P(0)/Q(0) is exactly 1 and tanh(x) = x for tiny x;
// scripts/fit_tanh.py derives them and their fp32 errors);
// each clamp c is the first fp32 point past its fit interval where the fp32 rational exceeds 1
// (by 1.3e-8 and 2.9e-8): past it, x P(c^2)/Q(c^2) grows with |x| from there (infinities included),
// so inputs beyond it give exactly +-1, and saturated inputs give exactly zero gradients. The
// kernels fold alpha into the coefficients (see Fit), which saves a multiply per vector. P/Q is
// a true division where the divider is fast and off the FMA ports (scalar; AVX2; AVX-512 on AMD:
// measured 7-11% faster than the reciprocal estimate and a Newton step on Zen 3's AVX2, 10-15% on
// Zen 4's AVX-512, and exact), and with AVX-512 elsewhere rcp14 and one Newton step (rel. err.
// 2^-28; a 512-bit division takes 10+ cycles on Intel).
// For long bf16 segments the kernels look tanh up in a table of its values at all 2^16 bf16
// inputs instead (see bf16_table below; same bits).
// Multiplying x by P/Q last keeps tiny and subnormal x exact. Measured against std::tanh over
// every 4099th float (tests/test_norm.cpp, TanhRelativeError...). NaN stays NaN: x carries it to
// the product (min(NaN, c^2) is c^2, as x86's min keeps its second operand).
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

  // The two fits' coefficients as fp32 values, lowest degree first (see the top of the file):
  // P's, and Q's below its leading 1.
  static constexpr float kP32[4] = {6.971968750e+03f, 8.588027954e+02f, 1.595580769e+01f, 2.767232060e-02f};
  static constexpr float kQ32[3] = {6.971968750e+03f, 3.182752197e+03f, 1.473373260e+02f};
  static constexpr float kC32 = 7.10024f;
  static constexpr float kP16[3] = {7.805313873e+01f, 7.995819569e+00f, 5.217837542e-02f};
  static constexpr float kQ16[2] = {7.805313873e+01f, 3.399454498e+01f};
  static constexpr float kC16 = 5.1159315f;
  template <DType dt>
  static constexpr int degree() { return dt == DType::f32 ? 3 : 2; }

  // tanh(alpha x) as x P~(s) / Q~(s), s = min(x^2, smax): alpha folded into the coefficients,
  // P~_k = alpha^(2k+1-2n) p_k, Q~_k = alpha^(2k-2n) q_k (Q~ stays monic), smax = c^2 / alpha^2,
  // which saves the multiply by alpha on every vector. Each folded coefficient is one fp32
  // rounding of its exact value, as each fitted one already is. Folded only for |alpha| in
  // [2^-8, 2^8], where alpha^-6 q_0 (2^61 at most) stays far from fp32's overflow and
  // underflow and Q~(smax) from overflow (2^65); otherwise (and for alpha = 0, inf, NaN) the fit
  // is the plain one and the kernels multiply x by alpha first (see tanh_of).
  struct Fit {
    R p[4], q[3], smax;
  };
  static bool foldable(float alpha) {
    const float m = alpha < 0 ? -alpha : alpha;
    return m >= 0x1p-8f && m <= 0x1p8f;  // false for NaN
  }
  template <DType dt>
  static Fit fit(double alpha) {  // alpha = 1: the plain fit
    constexpr int n = degree<dt>();
    const float* p = dt == DType::f32 ? kP32 : kP16;
    const float* q = dt == DType::f32 ? kQ32 : kQ16;
    const float c = dt == DType::f32 ? kC32 : kC16;
    Fit f{};
    const double a2 = alpha * alpha;
    double a_k = 1.0;  // alpha^(2k-2n)
    for (int k = 0; k < n; ++k) a_k /= a2;
    for (int k = 0; k <= n; ++k, a_k *= a2) {
      f.p[k] = V::set1(static_cast<float>(p[k] * a_k * alpha));
      if (k < n) f.q[k] = V::set1(static_cast<float>(q[k] * a_k));
    }
    f.smax = V::set1(alpha == 1.0 ? c * c : static_cast<float>(static_cast<double>(c * c) / a2));
    return f;
  }
  template <DType dt>
  static inline R tanh(R x, const Fit& f) {
    constexpr int n = degree<dt>();
    const R s = V::min(V::mul(x, x), f.smax);  // NaN: x carries it
    R p = f.p[n], q = V::add(s, f.q[n - 1]);
    for (int k = n - 1; k >= 0; --k) p = V::fmadd(p, s, f.p[k]);
    for (int k = n - 2; k >= 0; --k) q = V::fmadd(q, s, f.q[k]);
    return saturate(V::mul(x, V::divide(p, q)));
  }
  // tanh(alpha x) with the fit from fit<dt>(fold ? alpha : 1).
  template <DType dt, bool fold>
  static inline R tanh_of(R x, const Fit& f, R a) {
    if constexpr (fold) return tanh<dt>(x, f);
    else return tanh<dt>(V::mul(a, x), f);
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
  // Software prefetch of the input kPrefetch bytes ahead of the vector at element i. With the
  // arithmetic now near the copy's speed, the hardware prefetcher alone left the cores waiting on
  // long rows (bf16 32768 x 4096, both threads: 23.6 ms without, 17.3-18.7 with 512-2048 bytes,
  // against a 19.4-23.3 ms copy, on Zen 4); harmless elsewhere. A prefetch never faults, so
  // reading past the end is fine.
  static constexpr int64_t kPrefetch = 1024;
  template <DType dt>
  static inline void prefetch(const void* p, int64_t i) {
    __builtin_prefetch(static_cast<const char*>(p) + i * esize(dt) + kPrefetch, 0, 3);
  }
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

  // tanh(alpha x) element-wise, alpha folded into the fit as the kernels do it (or not).
  template <DType dt, bool fold>
  static void tanh_array_impl(const float* x, float* y, int64_t n, float alpha) {
    const Fit f = fit<dt>(fold ? alpha : 1.0);
    const R a = V::set1(alpha);
    int64_t i = 0;
    for (; i + W <= n; i += W) V::store(y + i, tanh_of<dt, fold>(V::load(x + i), f, a));
    if (i < n) {
      alignas(64) float tmp[W] = {0};
      std::memcpy(tmp, x + i, (n - i) * sizeof(float));
      V::store(tmp, tanh_of<dt, fold>(V::load(tmp), f, a));
      std::memcpy(y + i, tmp, (n - i) * sizeof(float));
    }
  }
  static void tanh_array(const float* x, float* y, int64_t n, DType dt, float alpha) {
    const bool fold = foldable(alpha) && alpha != 1.0f;  // alpha = 1: the plain fit either way
    if (dt == DType::f32) fold ? tanh_array_impl<DType::f32, true>(x, y, n, alpha)
                               : tanh_array_impl<DType::f32, false>(x, y, n, alpha);
    else fold ? tanh_array_impl<DType::bf16, true>(x, y, n, alpha) : tanh_array_impl<DType::bf16, false>(x, y, n, alpha);
  }

  // ---- bf16 tanh from a table ---------------------------------------------------------------------
  // A bf16 input takes one of 2^16 values, so one call's tanh(alpha x) can be tabulated: T[k] is
  // what tanh_of<bf16> returns for the bf16 value with bits k, and the kernels load T[x] in place
  // of evaluating the function. Where the function bounds the loop (Zen 1's half-rate AVX2: the
  // bf16 forward took 2.1-2.5x a copy, the same loop without tanh 1.05x) the lookups, being
  // loads, cost less. The same bits as the function path (a NaN's payload and sign aside: which
  // NaN a product returns depends on its operands' order, which the compiler may swap): the
  // non-negative half is the function's, the negative half its mirror, since the function is odd
  // bit for bit (s, P(s) and Q(s) depend on x^2, alpha x and x P/Q change sign with x, the clamps
  // are symmetric, and a NaN at x is a NaN at -x). Every NaN keeps a zero low half (see Params).
  // Built per call in a per-thread buffer (256 KiB); Segments::bf16_table asks for it.
  static constexpr int64_t kTable = 65536;
  template <bool fold>
  static void fill_table(float* T, float alpha) {
    const Fit f = fit<DType::bf16>(fold ? alpha : 1.0);
    const R a = V::set1(alpha);
    constexpr int64_t half = kTable / 2;
    alignas(64) float in[W];
    for (int64_t k = 0; k < half; k += W) {
      for (int j = 0; j < W; ++j) {
        const uint32_t u = static_cast<uint32_t>(k + j) << 16;
        std::memcpy(in + j, &u, 4);
      }
      V::store(T + k, tanh_of<DType::bf16, fold>(V::load(in), f, a));
    }
    uint32_t u[W];
    for (int64_t k = half; k < kTable; k += W) {
      std::memcpy(u, T + k - half, sizeof(u));
      for (int j = 0; j < W; ++j) u[j] ^= 0x80000000u;
      std::memcpy(T + k, u, sizeof(u));
    }
  }
  static const float* bf16_table(float alpha) {  // alpha as Params leaves it
    static thread_local std::unique_ptr<float[]> buf;
    if (!buf) buf.reset(new float[kTable]);
    foldable(alpha) ? fill_table<true>(buf.get(), alpha) : fill_table<false>(buf.get(), alpha);
    return buf.get();
  }
  // One vector's tanh from the table (x: bf16 storage, the vector at element i).
  static inline R lookup(const float* T, const void* x, int64_t i) {
    const uint16_t* p = static_cast<const uint16_t*>(x) + i;
    alignas(64) float t[W];
    for (int j = 0; j < W; ++j) t[j] = T[p[j]];
    return V::load(t);
  }
  // One vector's tanh from the table where there is one, else by the function.
  template <DType dt, bool fold>
  static inline R tanh_at(const void* x, int64_t i, const Fit& f, R a, const float* T) {
    if constexpr (dt == DType::bf16)
      if (T) return lookup(T, x, i);
    return tanh_of<dt, fold>(load(x, dt, i), f, a);
  }
  // Two vectors' tanh from the table, in load_bf16_pair's lane order. With AVX2's even/odd lanes
  // the 16 indices come from four 8-byte loads; the values go through memory, whose stores and
  // reload measured faster on Zen 1 than a gather instruction (2.6x a copy for the whole loop) or
  // inserts into a register (1.4-1.6x): 1.2-1.4x against glibc's memcpy, 2 threads, 50432 x 768.
  static inline void lookup_pair(const float* T, const uint16_t* p, R& lo, R& hi) {
    alignas(64) float t[2 * W];
    if constexpr (W == 8 && V::pair_source(1) == 2 && V::pair_source(8) == 1) {
      for (int g = 0; g < 4; ++g) {
        uint64_t q;
        std::memcpy(&q, p + 4 * g, 8);
        t[2 * g] = T[q & 0xffff], t[2 * g + 1] = T[(q >> 32) & 0xffff];
        t[8 + 2 * g] = T[(q >> 16) & 0xffff], t[9 + 2 * g] = T[q >> 48];
      }
    } else {
      for (int j = 0; j < 2 * W; ++j) t[j] = T[p[V::pair_source(j)]];
    }
    lo = V::load(t), hi = V::load(t + W);
  }

  // ---- forward ----------------------------------------------------------------------------------
  // The storage type is a template argument so that the per-element loads and stores carry no
  // run-time branch; forward() and backward() dispatch once per call.
  // With a table T (bf16 only, see bf16_table), tanh comes from it instead of the function.
  template <DType dt, bool nt, bool fold>
  static void forward_impl(const void* x, void* y, const Segments& s, float alpha, const float* w, const float* b,
                           const float* wp = nullptr, const float* bp = nullptr, const float* T = nullptr) {
    // Locals, not s.*: the stores through y could alias s as far as the compiler knows, which
    // reloaded s.len and s.channels_first on every vector.
    const R a = V::set1(alpha);
    const Fit f = fit<dt>(fold ? alpha : 1.0);
    const int64_t len = s.len, channels = s.channels, end = s.end;
    const bool cf = s.channels_first;
    for (int64_t u = s.begin; u < end; ++u) {
      const int64_t base = u * len;
      R wc = V::set1(0.0f), bc = V::set1(0.0f);
      int64_t i = 0;
      if (cf) {
        const int64_t c = u % channels;
        wc = V::set1(w[c]), bc = V::set1(b[c]);
        for (; i + W <= len; i += W) {
          prefetch<dt>(x, base + i);
          store_out<dt, nt>(y, base + i, V::fmadd(wc, tanh_at<dt, fold>(x, base + i, f, a, T), bc));
        }
      } else {
        if constexpr (dt == DType::bf16 && W >= 8) {
          if (wp) {  // two vectors at a time, in the pair load's lane order (see pair_order)
            const auto* xs = static_cast<const uint16_t*>(x);
            auto* ys = static_cast<uint16_t*>(y);
            for (; i + 2 * W <= len; i += 2 * W) {
              prefetch<dt>(x, base + i);
              R lo, hi;
              if (T) {
                lookup_pair(T, xs + base + i, lo, hi);
              } else {
                V::load_bf16_pair(xs + base + i, lo, hi);
                lo = tanh_of<dt, fold>(lo, f, a), hi = tanh_of<dt, fold>(hi, f, a);
              }
              lo = V::fmadd(V::load(wp + i), lo, V::load(bp + i));
              hi = V::fmadd(V::load(wp + i + W), hi, V::load(bp + i + W));
              if constexpr (nt) V::stream_bf16_pair(ys + base + i, lo, hi);
              else V::store_bf16_pair(ys + base + i, lo, hi);
            }
          }
        }
        for (; i + W <= len; i += W) {
          prefetch<dt>(x, base + i);
          store_out<dt, nt>(y, base + i, V::fmadd(V::load(w + i), tanh_at<dt, fold>(x, base + i, f, a, T), V::load(b + i)));
        }
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
        store(out, dt, 0, V::fmadd(wc, tanh_at<dt, fold>(xt, 0, f, a, T), bc));
        std::memcpy(static_cast<char*>(y) + (base + i) * esize(dt), out, n * esize(dt));
      }
    }
  }

  // bf16 rows go two vectors at a time: one instruction per vector widens bf16 to fp32 (instead
  // of a zero-extension and a shift), and the pair is rounded back together. The lanes are not in
  // memory order: each ISA's V::pair_source(j) names the element (of a block of 2W) that slot j
  // holds, slots 0..W-1 being `lo` and W..2W-1 `hi` (AVX-512: unpacks, the first 4 of each group of
  // 8 elements in lo and the last 4 in hi; AVX2: even elements in lo, odd in hi). The weights are
  // put in that order once per call.
  static void pair_order(const float* src, float* dst, int64_t n) {
    if constexpr (W >= 8)
      for (int64_t blk = 0; blk + 2 * W <= n; blk += 2 * W)
        for (int j = 0; j < 2 * W; ++j) dst[blk + j] = src[blk + V::pair_source(j)];
  }

  // The parameters for bf16 outputs, with every NaN among them (alpha, w, b) made the default
  // quiet NaN 0x7fc00000. Then every NaN the kernels store has a zero low half: x and dy, being
  // bf16, have one, and so does the NaN an invalid operation (inf - inf, 0 * inf) makes. That lets
  // the integer rounding to bf16 go without a NaN guard (12 % of the AVX2 bf16 forward on Zen 4);
  // a NaN is still a NaN, as the payload of a NaN parameter is not kept. Copies only when a
  // parameter is a NaN; one pass over the C parameters per call otherwise.
  struct Params {
    const float* w;
    const float* b;  // null in the backward
    float alpha;
    std::unique_ptr<float[]> copy;
    Params(DType dt, const float* w_, const float* b_, int64_t C, float alpha_) : w(w_), b(b_), alpha(alpha_) {
      if (dt != DType::bf16) return;
      const float qnan = quiet_nan();
      if (alpha != alpha) alpha = qnan;
      bool any = false;
      for (int64_t c = 0; c < C; ++c) any |= (w[c] != w[c]) | (b && b[c] != b[c]);
      if (!any) return;
      copy.reset(new float[2 * C]);
      for (int64_t c = 0; c < C; ++c) {
        copy[c] = w[c] != w[c] ? qnan : w[c];
        copy[C + c] = b && b[c] != b[c] ? qnan : (b ? b[c] : 0.0f);
      }
      w = copy.get(), b = b ? copy.get() + C : nullptr;
    }
    static float quiet_nan() {
      const uint32_t u = 0x7fc00000u;
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    }
  };

  static void forward(const void* x, void* y, DType dt, const Segments& s, float alpha_in, const float* w_in,
                      const float* b_in) {
    const Params prm(dt, w_in, b_in, s.channels, alpha_in);
    const float* w = prm.w;
    const float* b = prm.b;
    const float alpha = prm.alpha;
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
    const bool fold = foldable(alpha);
    if (dt == DType::bf16 && s.bf16_table && s.begin < s.end) {  // the fit lives in the table (see backward)
      const float* T = bf16_table(alpha);
      if (nt) forward_impl<DType::bf16, true, false>(x, y, s, alpha, w, b, wp, bp, T);
      else forward_impl<DType::bf16, false, false>(x, y, s, alpha, w, b, wp, bp, T);
    } else if (nt) {
      fold ? forward_dispatch<true, true>(x, y, dt, s, alpha, w, b, wp, bp)
           : forward_dispatch<true, false>(x, y, dt, s, alpha, w, b, wp, bp);
    } else {
      fold ? forward_dispatch<false, true>(x, y, dt, s, alpha, w, b, wp, bp)
           : forward_dispatch<false, false>(x, y, dt, s, alpha, w, b, wp, bp);
    }
    if (nt) V::sfence();  // streaming stores are weakly ordered: drain them before returning
  }
  template <bool nt, bool fold>
  static void forward_dispatch(const void* x, void* y, DType dt, const Segments& s, float alpha, const float* w,
                               const float* b, const float* wp, const float* bp) {
    if (dt == DType::f32) forward_impl<DType::f32, nt, fold>(x, y, s, alpha, w, b);
    else forward_impl<DType::bf16, nt, fold>(x, y, s, alpha, w, b, wp, bp);
  }

  // ---- backward ---------------------------------------------------------------------------------
  // One vector step; returns dx and accumulates the three sums in registers.
  // x: storage at element i; tanh from the table T where there is one (bf16).
  template <DType dt, bool fold>
  static inline R bwd_step(const void* x, int64_t i, R dyv, R wc, R a, const Fit& f, const float* T, R& acc_alpha,
                           R& acc_w, R& acc_b) {
    const R xv = load(x, dt, i);
    R t;
    if constexpr (dt == DType::bf16) t = T ? lookup(T, x, i) : tanh_of<dt, fold>(xv, f, a);
    else t = tanh_of<dt, fold>(xv, f, a);
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

  template <DType dt, bool nt, bool fold>
  static void backward_rows(const void* x, const void* dy, void* dx, const Segments& s, float alpha, const float* w,
                            Partials& p, const float* T) {
    const int64_t C = s.len;
    const R a = V::set1(alpha);
    const Fit f = fit<dt>(fold ? alpha : 1.0);
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
          prefetch<dt>(x, base + i), prefetch<dt>(dy, base + i);
          R aw = V::load(accw + k * W), ab = V::load(accb + k * W);
          R d = bwd_step<dt, fold>(x, base + i, load(dy, dt, base + i), V::load(w + i), a, f, T, acc_alpha, aw, ab);
          V::store(accw + k * W, aw), V::store(accb + k * W, ab);
          if (dx) store_out<dt, nt>(dx, base + i, d);
        }
        if (i < C) {
          const int64_t n = C - i;
          Tail tl;
          const void* xt = tl.in(0, x, dt, base + i, n);
          R dyv = load(tl.in(1, dy, dt, base + i, n), dt, 0);
          R wv = V::load(static_cast<const float*>(tl.in(2, w, DType::f32, i, n)));
          R aw = V::load(accw + k * W), ab = V::load(accb + k * W);
          R d = bwd_step<dt, fold>(xt, 0, dyv, wv, a, f, T, acc_alpha, aw, ab);
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

  template <DType dt, bool nt, bool fold>
  static void backward_planes(const void* x, const void* dy, void* dx, const Segments& s, float alpha, const float* w,
                              Partials& p, const float* T) {
    const R a = V::set1(alpha);
    const Fit f = fit<dt>(fold ? alpha : 1.0);
    const int64_t len = s.len, channels = s.channels, end = s.end;  // locals: see forward_impl
    for (int64_t u = s.begin; u < end; ++u) {
      const int64_t base = u * len, c = u % channels;
      const R wc = V::set1(w[c]);
      R acc_alpha = V::set1(0.0f), acc_w = V::set1(0.0f), acc_b = V::set1(0.0f);
      int64_t i = 0;
      for (; i + W <= len; i += W) {
        prefetch<dt>(x, base + i), prefetch<dt>(dy, base + i);
        R d = bwd_step<dt, fold>(x, base + i, load(dy, dt, base + i), wc, a, f, T, acc_alpha, acc_w, acc_b);
        if (dx) store_out<dt, nt>(dx, base + i, d);
      }
      if (i < len) {
        const int64_t n = len - i;
        Tail tl;
        R d = bwd_step<dt, fold>(tl.in(0, x, dt, base + i, n), 0, load(tl.in(1, dy, dt, base + i, n), dt, 0),
                                 wc, a, f, T, acc_alpha, acc_w, acc_b);
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

  static void backward(const void* x, const void* dy, void* dx, DType dt, const Segments& s, float alpha_in,
                       const float* w_in, Partials& p) {
    const Params prm(dt, w_in, nullptr, s.channels, alpha_in);  // see Params
    const float* w = prm.w;
    const float alpha = prm.alpha;
    const bool nt = streamable(dx, dt, s);
    // With a table the fit lives in it: the unfolded instantiation, its function never called.
    const float* T = dt == DType::bf16 && s.bf16_table && s.begin < s.end ? bf16_table(alpha) : nullptr;
    const bool fold = !T && foldable(alpha);
    if (nt) fold ? backward_dispatch<true, true>(x, dy, dx, dt, s, alpha, w, p, T)
                 : backward_dispatch<true, false>(x, dy, dx, dt, s, alpha, w, p, T);
    else fold ? backward_dispatch<false, true>(x, dy, dx, dt, s, alpha, w, p, T)
              : backward_dispatch<false, false>(x, dy, dx, dt, s, alpha, w, p, T);
    if (nt) V::sfence();
  }
  template <bool nt, bool fold>
  static void backward_dispatch(const void* x, const void* dy, void* dx, DType dt, const Segments& s, float alpha,
                                const float* w, Partials& p, const float* T) {
    if (dt == DType::f32) {
      if (s.channels_first) backward_planes<DType::f32, nt, fold>(x, dy, dx, s, alpha, w, p, nullptr);
      else backward_rows<DType::f32, nt, fold>(x, dy, dx, s, alpha, w, p, nullptr);
    } else {
      if (s.channels_first) backward_planes<DType::bf16, nt, fold>(x, dy, dx, s, alpha, w, p, T);
      else backward_rows<DType::bf16, nt, fold>(x, dy, dx, s, alpha, w, p, T);
    }
  }

  // A constant expression: the per-ISA tables are constant-initialised, so no code compiled for
  // AVX2/AVX-512 runs while the program loads (a processor without them must still start).
  static constexpr Kernels table(const char* isa, int64_t bf16_table_min) {
    return Kernels{isa, W, &forward, &backward, &tanh_array, &round_bf16_array, bf16_table_min};
  }

  // The bf16 stores on their own: blocks of two vectors through the pair store (its inputs put in
  // load_bf16_pair's order first), then single vectors, then a zero-padded tail.
  static void round_bf16_array(const float* x, uint16_t* y, int64_t n) {
    int64_t i = 0;
    if constexpr (W >= 8) {
      alignas(64) float ordered[2 * W];
      for (; i + 2 * W <= n; i += 2 * W) {
        pair_order(x + i, ordered, 2 * W);
        V::store_bf16_pair(y + i, V::load(ordered), V::load(ordered + W));
      }
    }
    for (; i + W <= n; i += W) V::store_bf16(y + i, V::load(x + i));
    if (i < n) {
      alignas(64) float in[W] = {0};
      alignas(64) uint16_t out[W];
      std::memcpy(in, x + i, (n - i) * sizeof(float));
      V::store_bf16(out, V::load(in));
      std::memcpy(y + i, out, (n - i) * sizeof(uint16_t));
    }
  }
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
