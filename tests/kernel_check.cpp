// dyt_kernel_check: correctness and timing of the fused DyT kernels on one device, LibTorch only
// (no GoogleTest), so that it runs from the GPU bundle on a machine with nothing else installed.
//
//   dyt_kernel_check [--device cpu|cuda] [--quick] [--no-timing] [--case SUBSTRING]
//
// Every case runs the fused op forward and backward and compares with the formula evaluated in
// fp64 on the same (rounded) inputs. Tolerances are bounds derived from the arithmetic, not
// fitted: with u_out the output rounding (2^-24 fp32, 2^-9 bf16, 2^-12 fp16 relative) and u_t
// the tanh error (CUDA: tanhf for fp32 ~2 ulp, tanh.approx.f32 2^-10.9 for 16-bit; CPU: 2e-6 for fp32
// and 1e-4 for bf16 tensors, the bounds tests/test_norm.cpp holds its two approximations to),
//   |y - y*|   <= 2 u_out |y*| + u_t |w t| + 1e-6
//   |dx - dx*| <= 2 u_out |dx*| + 2 u_t |dy w alpha| + 1e-6
//   |dw - dw*| <= (u_t + u_sum) sum|dy t|,  |db - db*| <= u_sum sum|dy|,
//   |da - da*| <= (2 u_t + u_sum) sum|dy w x|,  with u_sum = 1e-5 for fp32 partial sums.
// Prints one line per case and 'N passed, M failed'; exits 1 when any case fails.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "models/norm/dyt_op.h"
#include "runner/cli/cuda_timing.h"

namespace {

using torch::Tensor;

struct Options {
  torch::Device device = torch::kCPU;
  bool quick = false, timing = true;
  std::string only;
};

int g_passed = 0, g_failed = 0;

void report(const std::string& name, bool ok, const std::string& detail) {
  (ok ? g_passed : g_failed)++;
  std::printf("%s %-58s %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
  std::fflush(stdout);
}

const char* dtype_name(torch::ScalarType t) {
  return t == torch::kFloat ? "fp32" : t == torch::kBFloat16 ? "bf16" : t == torch::kHalf ? "fp16" : "other";
}

struct Tol {
  double u_out, u_t, u_sum;
};
Tol tolerances(torch::ScalarType dt, const torch::Device& dev) {
  const double u_t32 = dev.is_cuda() ? 2.4e-7 : 2e-6;
  if (dt == torch::kBFloat16) return {std::ldexp(1.0, -9), dev.is_cuda() ? std::ldexp(1.0, -10.9) * 1.05 : 1e-4, 1e-5};
  if (dt == torch::kHalf) return {std::ldexp(1.0, -12), std::ldexp(1.0, -10.9) * 1.05, 1e-5};
  return {std::ldexp(1.0, -24), u_t32, 1e-5};
}

// Worst ratio of |a - ref| to its bound; NaN positions must match. Returns > 1 on failure.
double worst(const Tensor& a, const Tensor& ref, const Tensor& bound) {
  Tensor ad = a.to(torch::kDouble), nan_a = ad.isnan(), nan_r = ref.isnan();
  if (!torch::equal(nan_a, nan_r)) {
    const int64_t i = (nan_a != nan_r).reshape(-1).nonzero()[0].item<int64_t>();
    std::fprintf(stderr, "  NaN mismatch at flat index %lld: got %g, reference %g\n", static_cast<long long>(i),
                 ad.reshape(-1)[i].item<double>(), ref.reshape(-1)[i].item<double>());
    return INFINITY;
  }
  Tensor err = (ad - ref).abs().masked_fill(nan_r, 0.0);
  Tensor same_inf = ad.isinf().logical_and(ad == ref);
  err = err.masked_fill(same_inf, 0.0);
  // Where the reference is NaN the bound is NaN too: those entries were checked above.
  return (err / bound).masked_fill(nan_r, 0.0).max().item<double>();
}

struct Case {
  std::string name;
  Tensor x, dy;  // x may be a strided view
  Tensor w, b;   // fp32
  double alpha;
  bool channels_first, x_grad = true;
  // y's dtype when not x's: an fp32 x with a bf16 / fp16 y and dy (dyt_fused's out_dtype, a norm
  // feeding a Linear under autocast); dy is then given in that dtype.
  torch::ScalarType out = torch::ScalarType::Undefined;
};

// Runs one case; reports its line.
void check_case(const Case& c, const Options& o) {
  if (!o.only.empty() && c.name.find(o.only) == std::string::npos) return;
  const bool mixed = c.out != torch::ScalarType::Undefined && c.out != c.x.scalar_type();
  const torch::ScalarType out = mixed ? c.out : c.x.scalar_type();
  const std::string name =
      c.name + " " + dtype_name(c.x.scalar_type()) + (mixed ? std::string(" -> ") + dtype_name(out) : "");
  try {
    const Tol tol = tolerances(c.x.scalar_type(), c.x.device());
    const double u_y = tolerances(out, c.x.device()).u_out;  // y is rounded to its own dtype
    Tensor x = c.x.detach().requires_grad_(c.x_grad);
    Tensor a = torch::full({1}, c.alpha, c.w.options()).requires_grad_(true);
    Tensor w = c.w.detach().clone().requires_grad_(true), b = c.b.detach().clone().requires_grad_(true);
    Tensor y = dyt::dyt_fused(x, a, w, b, c.channels_first, out);
    y.backward(c.dy);
    // fp64 reference on the same rounded inputs.
    Tensor xd = c.x.to(torch::kDouble), dyd = c.dy.to(torch::kDouble);
    std::vector<int64_t> pshape(c.channels_first ? xd.dim() - 1 : 1, 1);
    pshape[0] = c.w.size(0);
    Tensor wd = c.w.to(torch::kDouble).view(pshape), bd = c.b.to(torch::kDouble).view(pshape);
    Tensor t = torch::tanh(c.alpha * xd);
    Tensor y_ref = wd * t + bd;
    Tensor gw = dyd * wd;
    Tensor sech2 = 1 - t * t;
    Tensor dx_ref = gw * sech2 * c.alpha;
    std::vector<int64_t> red;  // every axis but the channel axis
    const int64_t cdim = c.channels_first ? 1 : xd.dim() - 1;
    for (int64_t d = 0; d < xd.dim(); ++d)
      if (d != cdim) red.push_back(d);
    Tensor dw_ref = (dyd * t).sum(red), db_ref = dyd.sum(red);
    Tensor da_ref = (gw * xd * sech2).sum();
    const double inf_guard = 1e300;  // saturated inputs make |x| infinite in the dalpha bound
    Tensor y_bound = 2 * u_y * y_ref.abs() + tol.u_t * (wd * t).abs() + 1e-6;
    Tensor dx_bound = 2 * tol.u_out * dx_ref.abs() + 2 * tol.u_t * (gw * c.alpha).abs() + 1e-6;
    Tensor dw_bound = (tol.u_t + tol.u_sum) * (dyd * t).abs().sum(red) + 1e-6;
    Tensor db_bound = tol.u_sum * dyd.abs().sum(red) + 1e-6;
    Tensor da_bound = ((2 * tol.u_t + tol.u_sum) * (gw * xd).abs().nan_to_num(0, inf_guard, inf_guard).sum() + 1e-6);
    std::string detail;
    bool ok = true;
    auto one = [&](const char* what, const Tensor& got, const Tensor& ref, const Tensor& bound) {
      const double r = worst(got, ref, bound);
      detail += std::string(what) + " " + (std::isfinite(r) ? c10::str(std::round(r * 1000) / 1000) : "NaN-mismatch") + " ";
      ok = ok && r <= 1.0;
    };
    if (y.scalar_type() != out) {
      ok = false;
      detail += std::string("output dtype ") + dtype_name(y.scalar_type()) + " ";
    }
    one("y", y.detach(), y_ref, y_bound);
    if (c.x_grad) one("dx", x.grad(), dx_ref, dx_bound);
    else if (x.grad().defined()) ok = false, detail += "dx defined without requires_grad ";
    one("dw", w.grad(), dw_ref, dw_bound);
    one("db", b.grad(), db_ref, db_bound);
    if (std::isfinite(da_ref.item<double>())) one("dalpha", a.grad(), da_ref.view({1}), da_bound.view({1}));
    // The ATen path returns the same dtype.
    Tensor y_aten = dyt::dyt_aten(c.x.detach(), a.detach(), c.w, c.b, c.channels_first, out);
    if (y_aten.scalar_type() != y.scalar_type()) ok = false, detail += "aten dtype differs ";
    if (mixed) {  // the fp32 kernels' y rounded once, and their dx from dy widened: the same bits
      Tensor x2 = c.x.detach().requires_grad_(c.x_grad);
      Tensor y32 = dyt::dyt_fused(x2, a.detach(), c.w, c.b, c.channels_first);
      if (!torch::equal(y32.to(out), y)) ok = false, detail += "y differs from the fp32 output rounded ";
      if (c.x_grad) {
        y32.backward(c.dy.to(y32.scalar_type()));
        if (!torch::equal(x2.grad(), x.grad())) ok = false, detail += "dx differs from the fp32 kernels' ";
      }
    }
    report(name, ok, "(error / bound) " + detail);
  } catch (const std::exception& e) {
    report(name, false, std::string("threw: ") + e.what());
  }
}

Tensor rnd(std::vector<int64_t> shape, const Options& o, torch::ScalarType dt, double scale = 1.0) {
  return (scale * torch::randn(shape, torch::TensorOptions().device(o.device))).to(dt);
}

// A contiguous tensor whose data pointer is one element past a 16-byte boundary.
Tensor misaligned(std::vector<int64_t> shape, const Options& o, torch::ScalarType dt, double scale) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  Tensor buf = rnd({n + 1}, o, dt, scale);
  return buf.narrow(0, 1, n).view(shape);
}

void correctness(const Options& o) {
  std::vector<torch::ScalarType> dtypes = {torch::kFloat, torch::kBFloat16};
  if (o.device.is_cuda()) dtypes.push_back(torch::kHalf);
  auto fopt = torch::TensorOptions().device(o.device);
  // fp32 x with a bf16 / fp16 y and dy (a norm feeding a Linear under autocast): the CUDA mixed
  // kernels on rows with C % 4 == 0 and aligned pointers, the fp32 kernels and a cast elsewhere.
  for (auto out : {torch::kBFloat16, torch::kHalf}) {
    torch::manual_seed(1);
    auto mixed = [&](const std::string& n, Tensor x, std::vector<int64_t> dy_shape, bool cf, bool x_grad = true) {
      const int64_t C = x.size(cf ? 1 : -1);
      Case c{n, x, rnd(dy_shape, o, out), 1 + 0.5 * torch::randn({C}, fopt), torch::randn({C}, fopt), 0.5, cf, x_grad,
             out};
      check_case(c, o);
    };
    const int64_t R = o.quick ? 1031 : 50432;
    mixed("mixed rows " + std::to_string(R) + "x768", rnd({R, 768}, o, torch::kFloat, 2.0), {R, 768}, false);
    mixed("mixed rows 300x768 x without grad", rnd({300, 768}, o, torch::kFloat, 2.0), {300, 768}, false, false);
    mixed("mixed rows 37x7 (C % 4 != 0: fp32 and a cast)", rnd({37, 7}, o, torch::kFloat, 2.0), {37, 7}, false);
    mixed("mixed rows 33x64 misaligned x", misaligned({33, 64}, o, torch::kFloat, 2.0), {33, 64}, false);
    mixed("mixed planes 4x6x8x8 (channels-first: a cast)", rnd({4, 6, 8, 8}, o, torch::kFloat, 2.0), {4, 6, 8, 8}, true);
  }
  for (auto dt : dtypes) {
    torch::manual_seed(0);
    auto rows = [&](const std::string& n, int64_t R, int64_t C, double alpha = 0.5) {
      Case c{n, rnd({R, C}, o, dt, 2.0), rnd({R, C}, o, dt), 1 + 0.5 * torch::randn({C}, fopt), torch::randn({C}, fopt),
             alpha, false};
      check_case(c, o);
    };
    // The benchmark shapes (ViT-S / ViT-B tokens, LLaMA-7B width) and the vectorised paths.
    if (o.quick) {
      rows("rows 257x384", 257, 384);
      rows("rows 1031x768", 1031, 768);
      rows("rows 64x4096", 64, 4096);
    } else {
      rows("rows 12608x384 (bench)", 12608, 384);
      rows("rows 50432x768 (bench)", 50432, 768);
      rows("rows 32768x4096 (bench)", 32768, 4096);
    }
    // Widths that are not a whole number of 16-byte packs: the one-element paths.
    rows("rows 37x7 (scalar path)", 37, 7);
    rows("rows 129x1001 (scalar path)", 129, 1001, 0.8);
    rows("rows 5x1 (one channel)", 5, 1);
    rows("rows 3x8 (fewer rows than a warp row)", 3, 8);
    // alpha: negative, and outside [2^-8, 2^8], where the CPU kernels do not fold it into the fit.
    rows("rows 65x96 alpha -0.6", 65, 96, -0.6);
    rows("rows 65x96 alpha 1e-3 (CPU: not folded)", 65, 96, 1e-3);
    rows("rows 65x96 alpha 300 (CPU: not folded)", 65, 96, 300.0);
    // More than one grid-stride pass of the one-element forward (grid <= 32 blocks per SM).
    if (!o.quick) rows("rows 4096x1001 (grid-stride passes)", 4096, 1001);
    // Channels-first planes: vectorised (plane % 8 == 0), one-element (odd plane), and plane of 1.
    auto planes = [&](const std::string& n, std::vector<int64_t> shape) {
      const int64_t C = shape[1];
      Case c{n, rnd(shape, o, dt, 2.0), rnd(shape, o, dt), 1 + 0.5 * torch::randn({C}, fopt), torch::randn({C}, fopt),
             0.7, true};
      check_case(c, o);
    };
    planes("planes 4x6x8x8 (vectorised)", {4, 6, 8, 8});
    planes("planes 3x5x7x7 (one-element)", {3, 5, 7, 7});
    planes("planes 6x10x1x1 (plane of one)", {6, 10, 1, 1});
    if (!o.quick) planes("planes 64x96x56x56 (grid-stride passes)", {64, 96, 56, 56});
    // Misaligned and non-contiguous views.
    {
      Case c{"rows 33x64 misaligned x and dy", misaligned({33, 64}, o, dt, 2.0), misaligned({33, 64}, o, dt, 1.0),
             torch::ones({64}, fopt), torch::zeros({64}, fopt), 0.5, false};
      check_case(c, o);
      Case t{"rows 48x40 transposed view", rnd({40, 48}, o, dt, 2.0).t(), rnd({48, 40}, o, dt),
             torch::randn({40}, fopt), torch::randn({40}, fopt), 0.5, false};
      check_case(t, o);
    }
    // x without grad: the backward skips dx and still returns the parameter gradients.
    {
      Case c{"rows 300x768 x without grad", rnd({300, 768}, o, dt, 2.0), rnd({300, 768}, o, dt),
             torch::randn({768}, fopt), torch::randn({768}, fopt), 0.5, false, /*x_grad=*/false};
      check_case(c, o);
    }
    // NaN, infinities and saturation: tanh(+-inf) = +-1 exactly, NaN stays NaN, dx = 0 saturated.
    {
      Tensor x = torch::tensor({-1e30f, -1e4f, -60.f, -9.f, 0.f, 9.f, 60.f, 1e4f, 1e30f, INFINITY, -INFINITY, NAN,
                                0.25f, -0.25f, 3.f, -3.f},
                               fopt)
                     .repeat({32, 1})
                     .to(dt);
      Case c{"saturation, inf and NaN 32x16", x, rnd({32, 16}, o, dt), torch::full({16}, 2.f, fopt),
             torch::full({16}, 0.5f, fopt), 1.0, false};
      check_case(c, o);
    }
    // NaN parameters with payloads in their low half (which a bf16 rounding without a NaN guard
    // would turn into -0 or inf): NaN in exactly those channels, in y, dx and their gradients.
    {
      auto nan_bits = [](uint32_t u) {
        float f;
        std::memcpy(&f, &u, 4);
        return f;
      };
      Tensor w = torch::randn({96}, fopt), b = torch::randn({96}, fopt);
      w[5] = nan_bits(0x7fffffffu), w[40] = nan_bits(0xffc0ffffu), b[17] = nan_bits(0x7f80ffffu);
      Case c{"rows 33x96 NaN weight and bias with payloads", rnd({33, 96}, o, dt, 2.0), rnd({33, 96}, o, dt), w, b,
             0.5, false};
      check_case(c, o);
    }
  }
}

void determinism(const Options& o) {
  const auto dt = torch::kBFloat16;
  const int64_t R = o.quick ? 2048 : 50432, C = 768;
  const std::string name = "determinism " + std::to_string(R) + "x768 bf16 (two runs bit-identical)";
  if (!o.only.empty() && name.find(o.only) == std::string::npos) return;
  torch::manual_seed(1);
  Tensor x0 = rnd({R, C}, o, dt, 2.0), dy = rnd({R, C}, o, dt);
  auto fopt = torch::TensorOptions().device(o.device);
  Tensor w0 = torch::randn({C}, fopt), b0 = torch::randn({C}, fopt);
  auto run = [&] {
    Tensor x = x0.detach().requires_grad_(true), a = torch::full({1}, 0.5, fopt).requires_grad_(true);
    Tensor w = w0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    Tensor y = dyt::dyt_fused(x, a, w, b, false);
    y.backward(dy);
    return std::vector<Tensor>{y.detach(), x.grad(), a.grad(), w.grad(), b.grad()};
  };
  auto r1 = run(), r2 = run();
  bool ok = true;
  for (size_t i = 0; i < r1.size(); ++i) ok = ok && torch::equal(r1[i], r2[i]);
  report(name, ok, ok ? "" : "outputs differ between runs");
}

template <class F>
void expect_throw(const std::string& name, const std::string& needle, F&& f) {
  try {
    f();
    report(name, false, "did not throw");
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    report(name, msg.find(needle) != std::string::npos, "message: " + msg.substr(0, msg.find('\n')));
  }
}

void refusals(const Options& o) {
  auto fopt = torch::TensorOptions().device(o.device);
  Tensor x = torch::randn({4, 8}, fopt), w = torch::ones({8}, fopt), b = torch::zeros({8}, fopt);
  expect_throw("refuses alpha with 2 elements", "one scalar", [&] { dyt::dyt_fused(x, torch::ones({2}, fopt), w, b, false); });
  expect_throw("refuses float64 input", "take float32", [&] {
    dyt::dyt_fused(x.to(torch::kDouble), torch::ones({1}, fopt), w, b, false);
  });
  if (o.device.is_cpu())
    expect_throw("refuses float16 on CPU", "take float32", [&] {
      dyt::dyt_fused(x.to(torch::kHalf), torch::ones({1}, fopt), w, b, false);
    });
  expect_throw("refuses create_graph=True (no second derivative)", "second derivative", [&] {
    Tensor xg = x.clone().requires_grad_(true);
    Tensor a = torch::full({1}, 0.5, fopt).requires_grad_(true);
    Tensor y = dyt::dyt_fused(xg, a, w, b, false);
    torch::autograd::grad({y.sum()}, {xg}, {}, /*retain_graph=*/true, /*create_graph=*/true);
  });
}

// ---- timing -------------------------------------------------------------------------------------------
double time_ms(const std::function<void()>& fn, const Options& o, Tensor& flush_buf, int repeats) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> samples;
#ifdef DYT_WITH_CUDA
  if (o.device.is_cuda())
    samples = dyt::cuda_event_samples_ms(fn, [&] { flush_buf.fill_(1.0f); }, repeats, o.device.index());
#endif
  if (o.device.is_cpu()) {
    for (int r = 0; r < repeats; ++r) {
      flush_buf.fill_(1.0f);
      auto t0 = std::chrono::steady_clock::now();
      fn();
      samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

void timing(const Options& o) {
  std::vector<std::pair<int64_t, int64_t>> shapes = {{12608, 384}, {50432, 768}, {32768, 4096}};
  if (o.quick) shapes = {{4096, 768}};
  auto fopt = torch::TensorOptions().device(o.device);
  Tensor flush_buf = torch::empty({(o.device.is_cuda() ? 512LL : 64LL) << 18}, fopt);  // 512 / 64 MiB
  const int repeats = o.device.is_cuda() ? 30 : 5;
  std::printf("\n| shape | dtype | copy ms | fused fwd ms | fwd / copy | fwd GB/s | fused fwd+bwd ms | fwd+bwd GB/s |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
  for (auto dt : {torch::kFloat, torch::kBFloat16}) {
    for (auto [R, C] : shapes) {
      torch::manual_seed(0);
      Tensor x = rnd({R, C}, o, dt, 2.0), dy = rnd({R, C}, o, dt);
      Tensor w = torch::ones({C}, fopt), b = torch::zeros({C}, fopt), a = torch::full({1}, 0.5, fopt);
      const double copy = time_ms([&] { x.clone(); }, o, flush_buf, repeats);
      const double fwd = time_ms([&] {
        torch::NoGradGuard ng;
        dyt::dyt_fused(x, a, w, b, false);
      }, o, flush_buf, repeats);
      Tensor xg = x.detach().requires_grad_(true), ag = a.clone().requires_grad_(true);
      Tensor wg = w.clone().requires_grad_(true), bg = b.clone().requires_grad_(true);
      const double fb = time_ms([&] {
        xg.mutable_grad() = Tensor(), ag.mutable_grad() = Tensor(), wg.mutable_grad() = Tensor(),
        bg.mutable_grad() = Tensor();
        dyt::dyt_fused(xg, ag, wg, bg, false).backward(dy);
      }, o, flush_buf, repeats);
      const double bytes = static_cast<double>(R * C * x.element_size());
      std::printf("| %lldx%lld | %s | %.3f | %.3f | %.2fx | %.0f | %.3f | %.0f |\n", static_cast<long long>(R),
                  static_cast<long long>(C), dtype_name(dt), copy, fwd, fwd / copy, 2 * bytes / (fwd * 1e6), fb,
                  5 * bytes / (fb * 1e6));
      std::fflush(stdout);
    }
  }
  std::printf("(median of %d; %s; GB/s counts x read + y written forward, and x, dy read + dx written backward)\n\n",
              repeats, o.device.is_cuda() ? "CUDA events, L2 flushed by a 512 MiB fill before each repeat"
                                          : "wall clock, caches flushed by a 64 MiB fill");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) {
      const std::string d = argv[++i];
      if (d != "cpu" && d != "cuda") {
        std::fprintf(stderr, "--device: expected cpu or cuda, got '%s'\n", d.c_str());
        return 2;
      }
      if (d == "cuda" && !torch::cuda::is_available()) {
        std::fprintf(stderr, "--device cuda: no CUDA device visible to LibTorch\n");
        return 2;
      }
      o.device = d == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--no-timing") {
      o.timing = false;
    } else if (a == "--case" && i + 1 < argc) {
      o.only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--device cpu|cuda] [--quick] [--no-timing] [--case SUBSTRING]\n", argv[0]);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  std::printf("# dyt_kernel_check on %s (%s), LibTorch %s, CPU kernels %s, CUDA kernels %s\n", o.device.str().c_str(),
              o.quick ? "quick shapes" : "benchmark shapes", TORCH_VERSION, dyt::dyt_cpu_isa().c_str(),
              dyt::dyt_cuda_compiled() ? "compiled" : "not compiled");
  correctness(o);
  determinism(o);
  refusals(o);
  if (o.timing) timing(o);
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
