// Norm layers against their formulas, gradients against finite differences (double), and the
// fused DyT op against the ATen reference on every CPU instruction set (and CUDA when present).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>

#include "models/model.h"
#include "models/norm/dyt_cpu.h"
#include "models/norm/dyt_op.h"
#include "models/norm/norm.h"
#include "runner/train/components.h"

using namespace dyt;
using torch::Tensor;

namespace {

NormLayer make(const std::string& type, int64_t dim, std::function<void(NormOptions&)> edit = {}, bool cf = false) {
  NormOptions o;
  o.type = type;
  if (edit) edit(o);
  return make_norm_factory(o, cf)(dim);
}

// Randomises every parameter so the affine parts are exercised.
void randomise(torch::nn::Module& m, double scale = 0.5) {
  torch::NoGradGuard ng;
  for (auto& p : m.parameters()) p.copy_(1.0 + scale * torch::randn_like(p));
}

double max_rel(const Tensor& a, const Tensor& b) {
  Tensor ad = a.to(torch::kDouble), bd = b.to(torch::kDouble);
  return ((ad - bd).abs() / (bd.abs() + 1e-6)).max().item<double>();
}

double max_abs(const Tensor& a, const Tensor& b) { return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>(); }

// Central finite differences of L = sum(f(x) * r) with respect to every element of `t`.
Tensor finite_difference(const std::function<Tensor()>& f, Tensor t, const Tensor& r, double h = 1e-6) {
  torch::NoGradGuard ng;
  Tensor g = torch::zeros_like(t);
  Tensor flat = t.view(-1), gflat = g.view(-1);
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const double v = flat[i].item<double>();
    flat[i] = v + h;
    const double up = (f() * r).sum().item<double>();
    flat[i] = v - h;
    const double down = (f() * r).sum().item<double>();
    flat[i] = v;
    gflat[i] = (up - down) / (2 * h);
  }
  return g;
}

}  // namespace

TEST(Norm, UnknownTypeListsKnownOnes) {
  NormOptions o;
  o.type = "dynt";
  try {
    make_norm_factory(o);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown norm 'dynt' (did you mean 'dyt'?); known: derf, dyisru, dyt, identity, layernorm, rmsnorm"),
              std::string::npos)
        << e.what();
  }
}

TEST(Norm, LayerNormAndRmsNormMatchTheirFormulas) {
  torch::manual_seed(1);
  Tensor x = torch::randn({4, 5, 12}, torch::kDouble);
  auto ln = make("layernorm", 12, [](NormOptions& o) { o.eps = 1e-5; });
  ln->to(torch::kDouble);
  randomise(*ln);
  auto lnp = ln->named_parameters();
  Tensor mean = x.mean(-1, true), var = x.var(-1, /*unbiased=*/false, true);
  Tensor expect = (x - mean) / torch::sqrt(var + 1e-5) * lnp["weight"] + lnp["bias"];
  EXPECT_LT(max_abs(ln->forward(x), expect), 1e-12);

  auto rms = make("rmsnorm", 12, [](NormOptions& o) { o.eps = 1e-6; });
  rms->to(torch::kDouble);
  randomise(*rms);
  Tensor expect_rms = x / torch::sqrt(x.pow(2).mean(-1, true) + 1e-6) * rms->named_parameters()["weight"];
  EXPECT_LT(max_abs(rms->forward(x), expect_rms), 1e-12);
}

TEST(Norm, DyTSquashVariantsMatchTheFormula) {
  torch::manual_seed(2);
  Tensor x = 3 * torch::randn({3, 7, 10}, torch::kDouble);
  for (const std::string squash : {"tanh", "hardtanh", "sigmoid", "identity"}) {
    auto m = make("dyt", 10, [&](NormOptions& o) { o.squash = squash, o.impl = "aten", o.alpha_init = 0.7; });
    m->to(torch::kDouble);
    randomise(*m);
    auto p = m->named_parameters();
    Tensor z = p["alpha"] * x;
    Tensor f = squash == "tanh" ? torch::tanh(z) : squash == "hardtanh" ? z.clamp(-1, 1) : squash == "sigmoid" ? 1 / (1 + torch::exp(-z)) : z;
    EXPECT_LT(max_abs(m->forward(x), f * p["weight"] + p["bias"]), 1e-12) << squash;
  }
}

TEST(Norm, DerfAndDyisruMatchTheirFormulas) {
  torch::manual_seed(3);
  Tensor x = torch::randn({5, 8}, torch::kDouble);
  auto d = make("derf", 8);
  d->to(torch::kDouble);
  randomise(*d);
  auto p = d->named_parameters();
  EXPECT_LT(max_abs(d->forward(x), torch::erf(p["alpha"] * x + p["shift"]) * p["weight"] + p["bias"]), 1e-12);
  auto s = make("dyisru", 8);
  s->to(torch::kDouble);
  auto q = s->named_parameters();
  EXPECT_DOUBLE_EQ(q["r"].item<double>(), 8.0);  // initialised to C: y ~ x for unit-variance input
  EXPECT_LT(max_abs(s->forward(x), std::sqrt(8.0) * x / torch::sqrt(x * x + 8.0 + 1e-6) * q["weight"] + q["bias"]), 1e-12);
}

TEST(Norm, GradientsMatchFiniteDifferencesInDouble) {
  torch::manual_seed(4);
  for (const std::string type : {"layernorm", "rmsnorm", "dyt", "derf", "dyisru"}) {
    auto m = make(type, 6, [](NormOptions& o) { o.impl = "aten"; });
    m->to(torch::kDouble);
    randomise(*m, 0.3);
    Tensor x = torch::randn({3, 6}, torch::kDouble).requires_grad_(true);
    Tensor r = torch::randn({3, 6}, torch::kDouble);
    (m->forward(x) * r).sum().backward();
    auto f = [&] { return m->forward(x); };
    EXPECT_LT(max_abs(x.grad(), finite_difference(f, x.detach(), r)), 1e-7) << type << " dx";
    for (auto& kv : m->named_parameters())
      EXPECT_LT(max_abs(kv.value().grad(), finite_difference(f, kv.value().detach(), r)), 1e-7) << type << " d" << kv.key();
  }
}

TEST(Norm, FixedAlphaIsABufferAndStaysPut) {
  auto m = make("dyt", 16, [](NormOptions& o) { o.learnable_alpha = false, o.alpha_init = 1.0; });
  EXPECT_EQ(count_parameters(*m), 32);  // weight and bias only
  EXPECT_EQ(m->named_buffers().size(), 1u);
  Tensor x = torch::randn({4, 16}, torch::requires_grad());
  m->forward(x).sum().backward();
  EXPECT_DOUBLE_EQ(m->named_buffers()["alpha"].item<double>(), 1.0);
  EXPECT_FALSE(m->named_buffers()["alpha"].grad().defined());
  auto learn = make("dyt", 16);
  EXPECT_EQ(count_parameters(*learn), 33);  // one alpha per layer
}

TEST(Norm, ChannelsFirstNormalisesDimOne) {
  torch::manual_seed(5);
  Tensor x = torch::randn({2, 6, 3, 4});
  for (const std::string type : {"layernorm", "rmsnorm", "dyt"}) {
    auto cl = make(type, 6, [](NormOptions& o) { o.impl = "aten"; });
    auto cf = make(type, 6, [](NormOptions& o) { o.impl = "aten"; }, /*cf=*/true);
    randomise(*cl);
    {
      torch::NoGradGuard ng;
      for (auto& kv : cf->named_parameters()) kv.value().copy_(cl->named_parameters()[kv.key()]);
    }
    Tensor expect = cl->forward(x.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
    EXPECT_LT(max_abs(cf->forward(x), expect), 1e-5) << type;
  }
}

// ---- fused DyT --------------------------------------------------------------------------------------
namespace {

struct Grads {
  Tensor y, dx, dalpha, dw, db;
  // Reference runs (ATen): sum |dy w x sech^2(alpha x)|, the scale dalpha's errors grow with. Its
  // terms cancel, so |dalpha| alone can be far smaller than the sum's rounding and tanh errors.
  double dalpha_abs = 0;
};

Grads run_dyt(bool fused, const Tensor& x_in, const Tensor& dy, double alpha, const Tensor& w, const Tensor& b, bool cf) {
  Tensor x = x_in.detach().clone().requires_grad_(true);
  if (!x_in.is_contiguous()) x = x_in.detach().requires_grad_(true);  // keep the strided layout
  Tensor a = torch::full({1}, alpha, w.options()).requires_grad_(true);
  Tensor wg = w.detach().clone().requires_grad_(true), bg = b.detach().clone().requires_grad_(true);
  Tensor y = fused ? dyt_fused(x, a, wg, bg, cf) : dyt_aten(x, a, wg, bg, cf);
  y.backward(dy);
  Grads g{y.detach(), x.grad(), a.grad(), wg.grad(), bg.grad()};
  if (!fused) {  // sech^2 is even: the same sum with |x|, |dy|, |w| and |alpha| has no cancellation
    auto abs64 = [](const Tensor& t) { return t.detach().abs().to(torch::kDouble); };
    Tensor aa = torch::full({1}, std::abs(alpha), torch::kDouble).requires_grad_(true);
    dyt_aten(abs64(x_in), aa, abs64(w), abs64(b), cf).backward(abs64(dy));
    g.dalpha_abs = aa.grad().item<double>();
  }
  return g;
}

void expect_close(const Grads& f, const Grads& r, double rtol, const std::string& what) {
  auto check = [&](const Tensor& a, const Tensor& b, const char* name) {
    ASSERT_TRUE(a.defined() && b.defined()) << what << " " << name;
    EXPECT_EQ(a.sizes(), b.sizes()) << what << " " << name;
    // Relative to the tensor's scale, so entries near zero do not dominate; dalpha relative to
    // the sum of its terms' magnitudes where the reference has it (see Grads).
    double scale = b.to(torch::kDouble).abs().max().item<double>() + 1e-12;
    if (std::string(name) == "dalpha") scale = std::max(scale, r.dalpha_abs);
    EXPECT_LE(max_abs(a, b) / scale, rtol) << what << " " << name;
  };
  check(f.y, r.y, "y");
  check(f.dx, r.dx, "dx");
  check(f.dalpha, r.dalpha, "dalpha");
  check(f.dw, r.dw, "dweight");
  check(f.db, r.db, "dbias");
}

}  // namespace

TEST(FusedDyT, MatchesAtenOnFreshRandomInputsAnyChannelCount) {
  ASSERT_TRUE(dyt_fused_available(torch::kCPU, torch::kFloat, nullptr));
  for (int64_t C : {1, 7, 16, 17, 100, 387, 768}) {
    torch::manual_seed(10 + C);
    Tensor x = 2 * torch::randn({37, C}), dy = torch::randn({37, C});
    Tensor w = torch::randn({C}), b = torch::randn({C});
    // Reference in double, compared at fp32 tolerance.
    Grads ref = run_dyt(false, x.to(torch::kDouble), dy.to(torch::kDouble), 0.6, w.to(torch::kDouble), b.to(torch::kDouble), false);
    expect_close(run_dyt(true, x, dy, 0.6, w, b, false), ref, 1e-5, "C=" + std::to_string(C));
  }
}

TEST(FusedDyT, NonContiguousAndChannelsFirstInputs) {
  torch::manual_seed(11);
  Tensor base = torch::randn({24, 40});
  Tensor x = base.t();  // [40, 24], non-contiguous
  Tensor dy = torch::randn({40, 24}), w = torch::randn({24}), b = torch::randn({24});
  expect_close(run_dyt(true, x, dy, 0.5, w, b, false), run_dyt(false, x, dy, 0.5, w, b, false), 1e-5, "transposed");
  Tensor xc = torch::randn({3, 5, 6, 7}), dyc = torch::randn({3, 5, 6, 7});
  Tensor wc = torch::randn({5}), bc = torch::randn({5});
  expect_close(run_dyt(true, xc, dyc, 0.8, wc, bc, true), run_dyt(false, xc, dyc, 0.8, wc, bc, true), 1e-5, "NCHW");
  Tensor xs = torch::randn({2, 3, 16, 16}), dys = torch::randn({2, 3, 16, 16});  // plane a multiple of 16
  expect_close(run_dyt(true, xs, dys, 0.8, wc.slice(0, 0, 3), bc.slice(0, 0, 3), true),
               run_dyt(false, xs, dys, 0.8, wc.slice(0, 0, 3), bc.slice(0, 0, 3), true), 1e-5, "NCHW 16x16");
}

TEST(FusedDyT, SaturatesExactlyWithoutNaNForLargeInputs) {
  Tensor x = torch::tensor({-1e30f, -1e4f, -60.f, -50.5f, 50.5f, 60.f, 1e4f, 1e30f, INFINITY, -INFINITY}).view({1, 10});
  Tensor w = torch::full({10}, 2.f), b = torch::full({10}, 0.5f);
  Tensor dy = torch::ones({1, 10});
  Grads g = run_dyt(true, x, dy, 1.0, w, b, false);
  Tensor expect = torch::where(x > 0, torch::full_like(x, 2.5f), torch::full_like(x, -1.5f));
  EXPECT_TRUE(torch::equal(g.y, expect)) << g.y;
  EXPECT_FALSE(g.dx.isnan().any().item<bool>());
  EXPECT_TRUE(torch::equal(g.dx, torch::zeros_like(x)));
  EXPECT_TRUE(std::isfinite(g.dalpha.item<float>()) || x.isinf().any().item<bool>());
  Tensor nan_in = torch::tensor({NAN, 1.f}).view({1, 2});
  EXPECT_TRUE(dyt_fused(nan_in, torch::ones({1}), torch::ones({2}), torch::zeros({2}), false)[0][0].isnan().item<bool>());
}

TEST(FusedDyT, EmptyTensors) {
  Tensor x = torch::zeros({0, 8}, torch::requires_grad());
  Tensor a = torch::ones({1}, torch::requires_grad()), w = torch::ones({8}, torch::requires_grad()),
         b = torch::zeros({8}, torch::requires_grad());
  Tensor y = dyt_fused(x, a, w, b, false);
  EXPECT_EQ(y.sizes(), x.sizes());
  y.sum().backward();
  EXPECT_EQ(a.grad().item<float>(), 0.f);
  EXPECT_TRUE(torch::equal(w.grad(), torch::zeros({8})));
}

TEST(FusedDyT, Bfloat16WithinBf16Tolerance) {
  torch::manual_seed(12);
  for (int64_t C : {8, 33, 384}) {
    Tensor x = torch::randn({64, C}), dy = torch::randn({64, C});
    Tensor w = torch::randn({C}), b = torch::randn({C});
    Grads f = run_dyt(true, x.to(torch::kBFloat16), dy.to(torch::kBFloat16), 0.5, w, b, false);
    Grads r = run_dyt(false, x.to(torch::kBFloat16).to(torch::kFloat), dy.to(torch::kBFloat16).to(torch::kFloat), 0.5, w, b, false);
    EXPECT_EQ(f.y.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(f.dx.scalar_type(), torch::kBFloat16);
    expect_close(f, r, 1e-2, "bf16 C=" + std::to_string(C));
  }
}

TEST(FusedDyT, EveryCpuIsaMatchesTheReference) {
  // Raw kernels of each instruction set this processor has, against ATen in double.
  torch::manual_seed(13);
  const int64_t R = 19, C = 45;
  Tensor x = 3 * torch::randn({R, C}), dy = torch::randn({R, C}), w = torch::randn({C}), b = torch::randn({C});
  Grads ref = run_dyt(false, x.to(torch::kDouble), dy.to(torch::kDouble), 0.7, w.to(torch::kDouble), b.to(torch::kDouble), false);
  int tested = 0;
  for (const cpu::Kernels* k : cpu::runnable_kernels()) {
    const std::string isa = k->isa;
    ++tested;
    Tensor y = torch::empty_like(x), dx = torch::empty_like(x);
    cpu::Segments s{0, R, C, C, false};
    k->forward(x.data_ptr(), y.data_ptr(), cpu::DType::f32, s, 0.7f, w.data_ptr<float>(), b.data_ptr<float>());
    std::vector<double> dw(C, 0.0), db(C, 0.0);
    cpu::Partials p{dw.data(), db.data(), 0.0};
    k->backward(x.data_ptr(), dy.data_ptr(), dx.data_ptr(), cpu::DType::f32, s, 0.7f, w.data_ptr<float>(), p);
    Grads got{y, dx, torch::tensor({p.dalpha}, torch::kDouble), torch::tensor(dw, torch::kDouble), torch::tensor(db, torch::kDouble)};
    expect_close(got, ref, 1e-5, isa);
  }
  EXPECT_GE(tested, 1);
}

// Each ISA's rounding to bf16 (the stores the kernels write with: pairs, single vectors, tails)
// against ATen's fp32 -> bf16 conversion, bit for bit, on every 257th float: round to nearest
// even, infinities, NaN stays NaN. The one allowed difference: AVX512-BF16's instruction flushes
// fp32 subnormals to a signed zero, where ATen rounds them. NaNs have a zero low half, as every
// NaN the kernels store (see Kernels::round_bf16 and DyTImpl::Params).
TEST(FusedDyT, EveryCpuIsaRoundsToBf16AsAten) {
  const int64_t N = (int64_t(1) << 32) / 257 + 1;
  std::vector<float> x(N);
  for (int64_t i = 0; i < N; ++i) {
    uint32_t u = static_cast<uint32_t>(i * 257);
    if ((u & 0x7fffffffu) > 0x7f800000u) u = (u & 0xffff0000u) | 0x00400000u;  // as the kernels' NaNs
    std::memcpy(&x[i], &u, 4);
  }
  const Tensor ref = torch::from_blob(x.data(), {N}, torch::kFloat).to(torch::kBFloat16);
  const auto* r = reinterpret_cast<const uint16_t*>(ref.data_ptr());
  int tested = 0;
  for (const cpu::Kernels* k : cpu::runnable_kernels()) {
    const std::string isa = k->isa;
    ++tested;
    std::vector<uint16_t> y(N);
    k->round_bf16(x.data(), y.data(), N - 5);  // an odd length: pairs, single vectors and a tail
    k->round_bf16(x.data() + N - 5, y.data() + N - 5, 5);
    int64_t bad = 0, flushed = 0;
    for (int64_t i = 0; i < N; ++i) {
      const bool nan = std::isnan(x[i]);
      if (nan ? ((y[i] & 0x7fff) > 0x7f80) : y[i] == r[i]) continue;
      const bool subnormal = std::fpclassify(x[i]) == FP_SUBNORMAL;
      if (isa.rfind("avx512bf16", 0) == 0 && subnormal && y[i] == (r[i] & 0x8000)) {
        ++flushed;
        continue;
      }
      if (++bad <= 5)
        ADD_FAILURE() << isa << ": " << x[i] << std::hex << " (0x" << static_cast<uint32_t>(i * 257) << ") -> 0x"
                      << y[i] << ", ATen 0x" << r[i];
    }
    EXPECT_EQ(bad, 0) << isa;
    std::printf("%s: %lld floats rounded as ATen, %lld subnormals flushed\n", isa.c_str(),
                static_cast<long long>(N - flushed), static_cast<long long>(flushed));
  }
  EXPECT_GE(tested, 1);
}

// bf16 tensors through each ISA's kernels agree with the scalar kernels to one bf16 step (the
// vector paths differ from it only in the order of the dalpha sum and, on AVX-512, in the
// division, which can move a rounding by one step).
TEST(FusedDyT, EveryCpuIsaAgreesOnBf16Tensors) {
  torch::manual_seed(14);
  const int64_t R = 37, C = 104;  // rows of 3 pairs of 16 plus a vector of 8: every store path
  Tensor x = (3 * torch::randn({R, C})).to(torch::kBFloat16), dy = torch::randn({R, C}).to(torch::kBFloat16);
  Tensor w = torch::randn({C}), b = torch::randn({C});
  auto run = [&](const cpu::Kernels& k) {
    Tensor y = torch::empty_like(x), dx = torch::empty_like(x);
    cpu::Segments s{0, R, C, C, false};
    k.forward(x.data_ptr(), y.data_ptr(), cpu::DType::bf16, s, 0.7f, w.data_ptr<float>(), b.data_ptr<float>());
    std::vector<double> dw(C, 0.0), db(C, 0.0);
    cpu::Partials p{dw.data(), db.data(), 0.0};
    k.backward(x.data_ptr(), dy.data_ptr(), dx.data_ptr(), cpu::DType::bf16, s, 0.7f, w.data_ptr<float>(), p);
    return std::tuple{y.to(torch::kFloat), dx.to(torch::kFloat), p.dalpha, torch::tensor(dw, torch::kDouble)};
  };
  const auto [y0, dx0, da0, dw0] = run(cpu::kScalarKernels);
  for (const cpu::Kernels* k : cpu::runnable_kernels()) {
    const std::string isa = k->isa;
    if (isa == "scalar") continue;
    const auto [y, dx, da, dw] = run(*k);
    const double step = 1.0 / 128;  // bf16's relative step (2^-7 between neighbours)
    EXPECT_TRUE(torch::allclose(y, y0, step, 1e-6)) << isa << " y";
    EXPECT_TRUE(torch::allclose(dx, dx0, step, 1e-6)) << isa << " dx";
    EXPECT_LT((y - y0).abs().gt(0).sum().item<int64_t>(), R * C / 100) << isa << ": most outputs bit-identical";
    EXPECT_NEAR(da, da0, 1e-4 * std::abs(da0) + 1e-4) << isa;
    EXPECT_TRUE(torch::allclose(dw, dw0, 1e-5, 1e-5)) << isa;
  }
}

// The bf16 kernels' tanh from a table of all 2^16 inputs (Segments::bf16_table) gives the same
// bits as evaluating the function (a NaN's payload aside), forward and backward, for every bf16 input (NaNs, infinities,
// subnormals, both zeros) and for alphas folded into the fit or not, zero, infinite and NaN; in
// rows (pairs, single vectors and a tail) and in channels-first planes, with plain and streaming
// stores. Independent of the table's own construction: the reference is the kernels' function.
TEST(FusedDyT, Bf16TableGivesTheFunctionsBitsForEveryInput) {
  const int64_t N = 65536 + 72;  // every bf16 pattern, then a few again
  Tensor x = torch::empty({N}, torch::kBFloat16);
  auto* xb = reinterpret_cast<uint16_t*>(x.data_ptr());
  for (int64_t i = 0; i < N; ++i) xb[i] = static_cast<uint16_t>((i * 40503) & 0xffff);  // odd: a permutation
  torch::manual_seed(15);
  const Tensor dy = torch::randn({N}).to(torch::kBFloat16);
  struct Shape {
    int64_t units, len, channels;
    bool cf;
  };
  // Rows of 104 = 3 pairs of 16 + a vector of 8 (AVX2) or 3 pairs of 32 + a tail of 8 (AVX-512);
  // planes of 37 elements (vectors and a tail) over 5 channels.
  const Shape shapes[] = {{N / 104, 104, 104, false}, {N / 37, 37, 5, true}};
  const float alphas[] = {0.7f, -1.3f, 1.0f, 0.0f, 1e-3f, 500.0f, INFINITY, -INFINITY, NAN};
  // Bit for bit, except that a NaN may carry another payload or sign: which NaN an operation
  // returns depends on its operands' order, which the compiler may swap in a product.
  auto bf16_equal = [](const Tensor& a, const Tensor& b) {
    const auto* u = reinterpret_cast<const uint16_t*>(a.data_ptr());
    const auto* v = reinterpret_cast<const uint16_t*>(b.data_ptr());
    for (int64_t i = 0; i < a.numel(); ++i)
      if (u[i] != v[i] && !((u[i] & 0x7fff) > 0x7f80 && (v[i] & 0x7fff) > 0x7f80)) return false;
    return true;
  };
  auto f64_equal = [](const double* a, const double* b, size_t n) {
    for (size_t i = 0; i < n; ++i)
      if (std::memcmp(a + i, b + i, 8) != 0 && !(std::isnan(a[i]) && std::isnan(b[i]))) return false;
    return true;
  };
  for (const cpu::Kernels* k : cpu::runnable_kernels()) {
    for (const Shape& sh : shapes) {
      const int64_t n = sh.units * sh.len;
      const Tensor w = torch::randn({sh.channels}), b = torch::randn({sh.channels});
      for (float alpha : alphas) {
        for (bool stream : {false, true}) {
          const std::string what = std::string(k->isa) + (sh.cf ? " planes" : " rows") + " alpha " +
                                   std::to_string(alpha) + (stream ? " streaming" : "");
          Tensor y[2], dx[2];
          std::vector<double> dw[2], db[2];
          double da[2];
          for (int table = 0; table < 2; ++table) {
            cpu::Segments s{0, sh.units, sh.len, sh.channels, sh.cf};
            s.stream = stream, s.bf16_table = table == 1;
            y[table] = torch::empty({n}, torch::kBFloat16), dx[table] = torch::empty({n}, torch::kBFloat16);
            k->forward(x.data_ptr(), y[table].data_ptr(), cpu::DType::bf16, s, alpha, w.data_ptr<float>(),
                       b.data_ptr<float>());
            dw[table].assign(sh.channels, 0.0), db[table].assign(sh.channels, 0.0);
            cpu::Partials p{dw[table].data(), db[table].data(), 0.0};
            k->backward(x.data_ptr(), dy.data_ptr(), dx[table].data_ptr(), cpu::DType::bf16, s, alpha,
                        w.data_ptr<float>(), p);
            da[table] = p.dalpha;
          }
          EXPECT_TRUE(bf16_equal(y[0], y[1])) << what << ": y";
          EXPECT_TRUE(bf16_equal(dx[0], dx[1])) << what << ": dx";
          EXPECT_TRUE(f64_equal(dw[0].data(), dw[1].data(), sh.channels)) << what << ": dweight";
          EXPECT_TRUE(f64_equal(db[0].data(), db[1].data(), sh.channels)) << what << ": dbias";
          EXPECT_TRUE(f64_equal(&da[0], &da[1], 1)) << what << ": dalpha " << da[0] << " " << da[1];
        }
      }
    }
  }
}

// The op picks the table by size (and ISA): a tensor past the size, with the op's threads, gives
// the bits of the raw kernels evaluating the function on one segment.
TEST(FusedDyT, Bf16OpWithItsTableMatchesTheFunctionPath) {
  torch::manual_seed(16);
  const int64_t R = 2048, C = 392;  // 802816 elements: past AVX2's 2^18 per thread up to 3 threads
  Tensor x = (3 * torch::randn({R, C})).to(torch::kBFloat16), dy = torch::randn({R, C}).to(torch::kBFloat16);
  Tensor w = torch::randn({C}), b = torch::randn({C});
  Grads f = run_dyt(true, x, dy, 0.8, w, b, false);
  const cpu::Kernels& k = cpu::best_kernels();
  cpu::Segments s{0, R, C, C, false};
  Tensor y = torch::empty_like(x), dx = torch::empty_like(x);
  k.forward(x.data_ptr(), y.data_ptr(), cpu::DType::bf16, s, 0.8f, w.data_ptr<float>(), b.data_ptr<float>());
  std::vector<double> dw(C, 0.0), db(C, 0.0);
  cpu::Partials p{dw.data(), db.data(), 0.0};
  k.backward(x.data_ptr(), dy.data_ptr(), dx.data_ptr(), cpu::DType::bf16, s, 0.8f, w.data_ptr<float>(), p);
  EXPECT_TRUE(torch::equal(f.y, y));
  EXPECT_TRUE(torch::equal(f.dx, dx));
  // The sums: the op splits rows over threads and adds the parts, so to rounding only.
  EXPECT_TRUE(torch::allclose(f.dw.to(torch::kDouble), torch::tensor(dw, torch::kDouble), 1e-5, 1e-4));
  EXPECT_TRUE(torch::allclose(f.db.to(torch::kDouble), torch::tensor(db, torch::kDouble), 1e-5, 1e-4));
  EXPECT_NEAR(f.dalpha.item<double>(), p.dalpha, 1e-5 * std::abs(p.dalpha) + 1e-3);
}

// The table decision: automatic by size (AVX2 from 2^18 elements per thread, the plain C++
// kernels from 2^16, off on AVX-512 and for any tensor shorter than a thread's minimum), and the
// process-wide override that `dyt bench norm` uses to time both paths in one run.
TEST(FusedDyT, Bf16TableOverrideDecidesOverTheSize) {
  if (std::getenv("DYT_CPU_BF16_TABLE")) GTEST_SKIP() << "DYT_CPU_BF16_TABLE is set";
  const cpu::Kernels& k = cpu::best_kernels();
  const int64_t threads = at::get_num_threads();
  if (k.bf16_table_min > 0) {
    EXPECT_FALSE(dyt_cpu_bf16_table_used(k.bf16_table_min * threads - threads)) << k.isa;
    EXPECT_TRUE(dyt_cpu_bf16_table_used(k.bf16_table_min * threads)) << k.isa;
  } else {
    EXPECT_FALSE(dyt_cpu_bf16_table_used(int64_t{1} << 40)) << k.isa;
  }
  dyt_cpu_bf16_table_override(1);
  EXPECT_TRUE(dyt_cpu_bf16_table_used(16));
  dyt_cpu_bf16_table_override(0);
  EXPECT_FALSE(dyt_cpu_bf16_table_used(int64_t{1} << 40));
  // Either way the bits are the function's (FusedDyT.Bf16TableGivesTheFunctionsBitsForEveryInput).
  torch::manual_seed(17);
  Tensor x = (3 * torch::randn({64, 24})).to(torch::kBFloat16), w = torch::randn({24}), b = torch::randn({24});
  Tensor alpha = torch::full({1}, 0.7);
  Tensor y0 = dyt_fused(x, alpha, w, b, false);
  dyt_cpu_bf16_table_override(1);
  Tensor y1 = dyt_fused(x, alpha, w, b, false);
  dyt_cpu_bf16_table_override(-1);
  EXPECT_TRUE(torch::equal(y0, y1));
  EXPECT_EQ(dyt_cpu_bf16_table_used(16), false);
  EXPECT_THROW(dyt_cpu_bf16_table_override(2), std::invalid_argument);
}

// The kernels' two tanh approximations against std::tanh: the fp32 one (used for fp32 tensors)
// within 2e-6, the bf16 one (bf16 tensors) within 1e-4, 1/20 of bf16's rounding step 2^-9.
// The bounds are the worst errors measured here (1.44e-6 and 7.2e-5 on Zen 1, scalar and AVX2,
// as the fits' fp32 evaluation in fp64 predicts) with a margin for AVX-512's reciprocal (2^-28);
// a wrong coefficient or clamp breaks them by orders of magnitude. (The degree-4 fp32 fit before
// 2026-12-02 was held to 5e-7.)
TEST(FusedDyT, TanhRelativeErrorWithinItsBoundOverTheWholeFloatRange) {
  for (const cpu::Kernels* k : cpu::runnable_kernels()) {
    const std::string isa = k->isa;
    for (const auto& [dt, bound] : {std::pair{cpu::DType::f32, 2e-6}, std::pair{cpu::DType::bf16, 1e-4}}) {
      const std::string what = isa + (dt == cpu::DType::f32 ? " fp32" : " bf16");
      const int64_t N = 1 << 16;
      std::vector<float> x(N), y(N);
      double worst = 0;
      int64_t nan_bad = 0, above_one = 0;
      // Every 4099th bit pattern: ~1M floats spread over all exponents, both signs, NaN and Inf.
      for (uint64_t base = 0; base < (1ull << 32); base += static_cast<uint64_t>(N) * 4099) {
        for (int64_t i = 0; i < N; ++i) {
          uint32_t u = static_cast<uint32_t>(base + static_cast<uint64_t>(i) * 4099);
          std::memcpy(&x[i], &u, 4);
        }
        k->tanh(x.data(), y.data(), N, dt, 1.0f);
        for (int64_t i = 0; i < N; ++i) {
          if (std::isnan(x[i])) {
            nan_bad += !std::isnan(y[i]);
            continue;
          }
          above_one += std::fabs(y[i]) > 1.0f;
          const double ref = std::tanh(static_cast<double>(x[i]));
          const double err = ref == 0 ? std::fabs(y[i]) : std::fabs((y[i] - ref) / ref);
          worst = std::max(worst, err);
        }
      }
      // And densely where the error lives: |x| in [0, 10], 2^20 points.
      for (int64_t i = 0; i < N; ++i) x[i] = static_cast<float>(10.0 * i / N);
      k->tanh(x.data(), y.data(), N, dt, 1.0f);
      for (int64_t i = 1; i < N; ++i) {
        const double ref = std::tanh(static_cast<double>(x[i]));
        worst = std::max(worst, std::fabs((y[i] - ref) / ref));
      }
      std::printf("tanh %s: worst relative error %.3g\n", what.c_str(), worst);
      EXPECT_LE(worst, bound) << what;
      EXPECT_EQ(nan_bad, 0) << what;
      EXPECT_EQ(above_one, 0) << what << ": |tanh| > 1";
      float big[4] = {12.f, -1e20f, INFINITY, -INFINITY}, out[4];
      k->tanh(big, out, 4, dt, 1.0f);
      EXPECT_EQ(out[0], 1.0f) << what;  // exact saturation
      EXPECT_EQ(out[1], -1.0f) << what;
      EXPECT_EQ(out[2], 1.0f) << what;
      EXPECT_EQ(out[3], -1.0f) << what;
      // Both fits have P(0)/Q(0) = 1 exactly (their fp32 P_0 and Q_0 are the same number).
      float tiny[3] = {1e-30f, -1e-40f, 0.0f}, t_out[3];  // tanh(x) = x below fp32 resolution, subnormals included
      k->tanh(tiny, t_out, 3, dt, 1.0f);
      EXPECT_EQ(t_out[0], 1e-30f) << what;
      EXPECT_EQ(t_out[1], -1e-40f) << what;
      EXPECT_EQ(t_out[2], 0.0f) << what;
    }
  }
}

// alpha folded into the fit (|alpha| in [2^-8, 2^8]) or applied to x first (outside it) keeps
// each fit's bound on tanh(alpha x), measured against std::tanh of the exact product, with room
// for one more fp32 rounding (of alpha x, or of each folded coefficient): 2e-6 + 2^-23 for the
// fp32 fit, 1e-4 + 2^-23 for the bf16 one; and saturates to exactly +-1.
TEST(FusedDyT, AlphaFoldedIntoTheFitKeepsItsBound) {
  const int64_t N = 1 << 14;
  std::vector<float> x(N), y(N);
  for (const cpu::Kernels* k : cpu::runnable_kernels())
    for (const auto& [dt, bound] : {std::pair{cpu::DType::f32, 2e-6}, std::pair{cpu::DType::bf16, 1e-4}})
      for (float alpha : {0.5f, -0.6f, 0x1p-8f, 3.7f, 0x1p8f, 1e-3f, 300.0f, -4e3f}) {
        const std::string what = std::string(k->isa) + (dt == cpu::DType::f32 ? " fp32" : " bf16") +
                                 " alpha=" + std::to_string(alpha);
        // alpha x densely over [-12, 12] (saturated past the clamps), and the extremes.
        for (int64_t i = 0; i < N; ++i) x[i] = static_cast<float>((24.0 * i / N - 12.0) / alpha);
        x[0] = INFINITY, x[1] = -1e30f, x[2] = 0.0f;
        k->tanh(x.data(), y.data(), N, dt, alpha);
        double worst = 0;
        for (int64_t i = 3; i < N; ++i) {
          const double ref = std::tanh(static_cast<double>(alpha) * x[i]);
          if (ref != 0) worst = std::max(worst, std::fabs((y[i] - ref) / ref));
        }
        EXPECT_LE(worst, bound + 0x1p-23) << what;
        EXPECT_EQ(y[0], alpha > 0 ? 1.0f : -1.0f) << what;
        EXPECT_EQ(y[1], alpha > 0 ? -1.0f : 1.0f) << what;
        EXPECT_EQ(y[2], 0.0f) << what;
        if (k == cpu::runnable_kernels().back())
          std::printf("%s: worst relative error %.3g\n", what.c_str(), worst);
      }
}

TEST(FusedDyT, NormLayerChoosesTheImplementationAndExplainsRefusals) {
  auto fused = make("dyt", 8, [](NormOptions& o) { o.impl = "fused"; });
  auto aten = make("dyt", 8, [](NormOptions& o) { o.impl = "aten"; });
  torch::manual_seed(36);
  Tensor x = 3 * torch::randn({5, 8});
  // At initialisation (weight 1, bias 0) the two differ by the fp32 fit's bound on tanh, 2e-6
  // relative (FusedDyT.TanhRelativeErrorWithinItsBoundOverTheWholeFloatRange), plus a rounding or
  // two of the product and the sum: 2e-6 + 2^-22 relative to ATen's output, on every ISA.
  Tensor y_fused = fused->forward(x), y_aten = aten->forward(x);
  EXPECT_TRUE(((y_fused - y_aten).abs() <= (2e-6 + 0x1p-22) * y_aten.abs()).all().item<bool>())
      << "worst relative difference " << ((y_fused - y_aten).abs() / y_aten.abs()).max().item<double>();
  EXPECT_GT(max_abs(y_fused, torch::zeros_like(y_fused)), 0.5);  // the comparison is not vacuous
  try {
    fused->forward(x.to(torch::kDouble));
    FAIL() << "float64 has no fused kernel";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU kernels take float32 and bfloat16, not Double"), std::string::npos) << e.what();
  }
  auto autoimpl = make("dyt", 8);  // auto falls back to ATen silently
  autoimpl->to(torch::kDouble);
  EXPECT_NO_THROW(autoimpl->forward(x.to(torch::kDouble)));
}

TEST(FusedDyT, CudaMatchesAten) {
  if (!torch::cuda::is_available() || !dyt_cuda_compiled()) GTEST_SKIP() << "no CUDA device (or CUDA kernels not built)";
  torch::manual_seed(14);
  auto dev = torch::Device(torch::kCUDA);
  for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    for (int64_t C : {7, 64, 768, 4096}) {
      Tensor x = 2 * torch::randn({130, C}, dev), dy = torch::randn({130, C}, dev);
      Tensor w = torch::randn({C}, dev), b = torch::randn({C}, dev);
      const double tol = dtype == torch::kFloat ? 1e-5 : 1e-2;
      Grads f = run_dyt(true, x.to(dtype), dy.to(dtype), 0.5, w, b, false);
      Grads r = run_dyt(false, x.to(dtype).to(torch::kDouble), dy.to(dtype).to(torch::kDouble), 0.5, w.to(torch::kDouble), b.to(torch::kDouble), false);
      expect_close(f, r, tol, "cuda C=" + std::to_string(C));
    }
    Tensor xc = torch::randn({2, 6, 9, 9}, dev), dyc = torch::randn({2, 6, 9, 9}, dev);
    Tensor wc = torch::randn({6}, dev), bc = torch::randn({6}, dev);
    expect_close(run_dyt(true, xc.to(dtype), dyc.to(dtype), 0.7, wc, bc, true),
                 run_dyt(false, xc.to(dtype).to(torch::kDouble), dyc.to(dtype).to(torch::kDouble), 0.7, wc.to(torch::kDouble), bc.to(torch::kDouble), true),
                 dtype == torch::kFloat ? 1e-5 : 1e-2, "cuda NCHW");
  }
}

// A DyT layer feeding a Linear under autocast (forward_to_linear, the pre-norm blocks' norm1 and
// norm2) returns autocast's dtype: the fp32 output rounded once, bit for bit, with the gradients
// of that explicit cast, for both implementations; without autocast it is forward(x). dyt_fused
// refuses any other change of dtype.
TEST(FusedDyT, OutputForALinearUnderAutocastIsTheCastOfTheFp32Output) {
  torch::manual_seed(21);
  for (const char* impl : {"fused", "aten"}) {
    auto layer = make("dyt", 24, [&](NormOptions& o) { o.impl = impl; });
    randomise(*layer);
    Tensor x = 3 * torch::randn({5, 7, 24}), r = torch::randn({5, 7, 24}).to(torch::kBFloat16);
    // Reference: forward in fp32, then the cast a Linear under autocast would make.
    layer->zero_grad();
    Tensor x1 = x.clone().requires_grad_();
    Tensor y_ref = layer->forward(x1).to(torch::kBFloat16);
    (y_ref.to(torch::kFloat) * r.to(torch::kFloat)).sum().backward();
    std::vector<Tensor> g_ref{x1.grad()};
    for (auto& p : layer->parameters()) g_ref.push_back(p.grad().clone());
    // forward_to_linear under CPU autocast (bf16).
    layer->zero_grad();
    Tensor x2 = x.clone().requires_grad_();
    Tensor y;
    {
      AutocastGuard ac(true, torch::kCPU, torch::kBFloat16);
      y = layer->forward_to_linear(x2);
      EXPECT_EQ(layer->forward(x).scalar_type(), torch::kFloat) << impl << ": forward keeps fp32";
    }
    ASSERT_EQ(y.scalar_type(), torch::kBFloat16) << impl;
    EXPECT_TRUE(torch::equal(y, y_ref)) << impl;
    (y.to(torch::kFloat) * r.to(torch::kFloat)).sum().backward();
    std::vector<Tensor> g{x2.grad()};
    for (auto& p : layer->parameters()) g.push_back(p.grad().clone());
    for (size_t i = 0; i < g.size(); ++i) EXPECT_TRUE(torch::equal(g[i], g_ref[i])) << impl << " gradient " << i;
    // Without autocast: forward itself.
    EXPECT_EQ(layer->forward_to_linear(x).scalar_type(), torch::kFloat) << impl;
    EXPECT_TRUE(torch::equal(layer->forward_to_linear(x), layer->forward(x))) << impl;
  }
  Tensor a = torch::full({1}, 0.5), w = torch::ones({8}), b = torch::zeros({8});
  EXPECT_EQ(dyt_fused(torch::randn({3, 8}), a, w, b, false, torch::kHalf).scalar_type(), torch::kHalf);
  try {
    dyt_fused(torch::randn({3, 8}).to(torch::kBFloat16), a, w, b, false, torch::kFloat);
    FAIL() << "bf16 -> fp32 is not an output dtype the op offers";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("fp32 input and a bf16 or fp16 output"), std::string::npos) << e.what();
  }
}
