// Benchmarks (subcommands, not tests): `dyt bench norm` times the norm layers alone against a
// plain copy of the tensor (the bandwidth reference); `dyt bench model` times whole models with
// each norm, as the paper's efficiency table; `dyt bench data` times the ImageNet input pipeline
// beside timm's. Timings are medians of repeats after warm-up; on
// the CPU caches are flushed between repeats so small tensors do not run from cache.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef DYT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <opencv2/core.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <torch/csrc/autograd/profiler_kineto.h>

#include "models/norm/dyt_op.h"
#include "models/norm/norm.h"
#include "models/llama.h"
#include "models/transformer.h"
#include "models/vit.h"
#include "runner/cli/commands.h"
#include "runner/experiment/config.h"
#include "runner/cli/cuda_timing.h"
#include "runner/experiment/experiment.h"
#include "core/distributed.h"
#include "datasets/dataset.h"
#include "datasets/loader.h"
#include "core/io.h"
#include "runner/train/components.h"

namespace dyt {
namespace fs = std::filesystem;
using torch::Tensor;

namespace {

torch::Device bench_device(const std::string& d) {
  if (d == "cuda") {
    if (!torch::cuda::is_available())
      throw ConfigError(Origin{"--device"}, "", "no CUDA device visible to LibTorch; use --device cpu");
    return torch::Device(torch::kCUDA, 0);
  }
  return torch::kCPU;
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Evicts the tensors of the previous repeat from the caches by streaming over a buffer of
// twice the last-level cache (CPU) or of the L2 (CUDA).
class CacheFlusher {
 public:
  explicit CacheFlusher(const torch::Device& d, bool enabled) : device_(d), enabled_(enabled) {
    if (!enabled_) return;
    int64_t bytes = 512LL << 20;  // H200: 60 MiB of L2; the fill also keeps the GPU busy while fn is enqueued
    if (d.is_cpu()) {
      long l3 = ::sysconf(_SC_LEVEL3_CACHE_SIZE);
      bytes = std::clamp<int64_t>(l3 > 0 ? 2 * l3 : (64LL << 20), 32LL << 20, 1LL << 30);
    }
    buf_ = torch::empty({bytes / 4}, torch::TensorOptions().dtype(torch::kFloat).device(d));
    // Touch every page now: on a VM the first write to fresh memory also waits for the host to back
    // it, which would otherwise land in the first case's samples (the copy, the ratios' base).
    flush();
  }
  void flush() {
    if (enabled_) buf_.fill_(1.0f);
  }
  int64_t bytes() const { return enabled_ ? buf_.numel() * 4 : 0; }

 private:
  torch::Device device_;
  bool enabled_;
  Tensor buf_;
};

// Minor page faults of this process so far (the kernel zeroing fresh pages: time that belongs to
// the allocator, not to the kernel being timed).
int64_t minor_faults() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

// Median milliseconds of fn(). CUDA with flushing: one call per sample between two CUDA events
// recorded on the stream, L2 flushed before each (the GPU's time for fn's kernels, launch gaps
// included only where the GPU waited for the CPU). CUDA without flushing: each sample averages
// `inner` back-to-back calls between two synchronisations. CPU: one call per sample, caches
// flushed first.
double time_ms(const std::function<void()>& fn, const torch::Device& d, int64_t warmup, int64_t repeats,
               CacheFlusher& flusher, bool flush) {
  for (int64_t i = 0; i < warmup; ++i) fn();
  sync(d);
#ifdef DYT_WITH_CUDA
  if (d.is_cuda() && flush && flusher.bytes() > 0)
    return median(cuda_event_samples_ms(fn, [&] { flusher.flush(); }, repeats, d.index()));
#endif
  const int64_t inner = d.is_cuda() ? 10 : 1;
  std::vector<double> samples;
  for (int64_t r = 0; r < repeats; ++r) {
    if (flush && d.is_cpu()) flusher.flush();
    sync(d);
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t k = 0; k < inner; ++k) fn();
    sync(d);
    samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / inner);
  }
  return median(samples);
}

std::pair<int64_t, int64_t> parse_shape(const std::string& s) {
  auto x = s.find('x');
  int64_t t = 0, c = 0;
  try {
    if (x == std::string::npos) throw std::invalid_argument(s);
    t = std::stoll(s.substr(0, x)), c = std::stoll(s.substr(x + 1));
  } catch (const std::exception&) {
    throw ConfigError(Origin{"--shape"}, "", fmt::format("'{}' is not TOKENSxCHANNELS, e.g. 12608x384", s));
  }
  if (t <= 0 || c <= 0) throw ConfigError(Origin{"--shape"}, "", fmt::format("'{}': sizes must be positive", s));
  return {t, c};
}

struct NormCase {
  std::string layer, impl;
  std::function<Tensor(const Tensor&)> fwd;
  std::vector<Tensor> params;
  int bf16_table = -1;  // the fused CPU op's bf16 table forced off (0) or on (1) for this case's calls
};

// Holds dyt_cpu_bf16_table_override for one timed call (forward, or forward and backward).
struct Bf16TableMode {
  explicit Bf16TableMode(int mode) : set(mode >= 0) {
    if (set) dyt_cpu_bf16_table_override(mode);
  }
  ~Bf16TableMode() {
    if (set) dyt_cpu_bf16_table_override(-1);
  }
  Bf16TableMode(const Bf16TableMode&) = delete;
  Bf16TableMode& operator=(const Bf16TableMode&) = delete;
  bool set;
};

std::string ratio(double a, double b) { return std::isfinite(a) && std::isfinite(b) && b > 0 ? fmt::format("{:.2f}x", a / b) : "-"; }
std::string ms(double v) { return std::isfinite(v) ? fmt::format("{:.3f}", v) : "-"; }

}  // namespace

int cmd_bench_norm(const BenchNormArgs& a) {
  const torch::Device dev = bench_device(a.device);
  if (a.threads > 0) at::set_num_threads(static_cast<int>(a.threads));
  const auto dtype = a.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat;
  std::vector<std::string> shapes = a.shapes;
  if (shapes.empty()) shapes = {"12608x384", "50432x768", "32768x4096"};
  const int64_t repeats = a.repeats > 0 ? a.repeats : (dev.is_cuda() ? 20 : 7);
  const int64_t warmup = a.warmup > 0 ? a.warmup : 2;
  const size_t esize = dtype == torch::kFloat ? 4 : 2;
  CacheFlusher flusher(dev, a.flush);
  std::printf("# dyt bench norm: %s %s, %d thread(s), DyT CPU kernels %s, median of %lld after %lld warm-up%s\n",
              dev.str().c_str(), a.dtype.c_str(), at::get_num_threads(), dyt_cpu_isa().c_str(),
              static_cast<long long>(repeats), static_cast<long long>(warmup),
              a.flush ? fmt::format(", caches flushed ({} MiB){}", flusher.bytes() >> 20,
                                    dev.is_cuda() ? ", CUDA events per call" : "").c_str()
                      : "");
  const std::vector<std::string> known = {"copy",      "layernorm", "rmsnorm",         "dyt",
                                          "copy/aten", "layernorm/aten", "rmsnorm/aten", "dyt/aten",
                                          "dyt/fused", "dyt/fused:table", "dyt/fused:function"};
  for (const auto& o : a.only) {
    if (std::find(known.begin(), known.end(), o) == known.end())
      throw ConfigError(Origin{"--only"}, "", unknown_name_message("benchmark case", o, known));
    if (o.find(':') != std::string::npos && (dev.is_cuda() || dtype != torch::kBFloat16))
      std::fprintf(stderr, "note: %s skipped: the tanh table is the CPU kernels', for --dtype bf16\n", o.c_str());
  }
  std::string csv = "layer,impl,device,dtype,tokens,channels,fwd_ms,fwdbwd_ms,fwd_gbps,fwdbwd_gbps\n";
  for (const auto& s : shapes) {
    const auto shape = parse_shape(s);  // (structured bindings cannot be captured in C++17)
    const int64_t T = shape.first, C = shape.second;
    auto opts = torch::TensorOptions().dtype(dtype).device(dev);
    auto popts = torch::TensorOptions().dtype(torch::kFloat).device(dev);
    torch::manual_seed(0);
    Tensor x = torch::randn({T, C}, opts);
    Tensor dy = torch::randn({T, C}, opts);
    Tensor w = torch::ones({C}, popts), b = torch::zeros({C}, popts), alpha = torch::full({1}, 0.5, popts);
    // Under autocast the norm runs with bf16 activations and fp32 parameters; ATen's layer_norm
    // wants matching dtypes, so it gets parameters in the activation dtype (as autocast would).
    Tensor wx = w.to(dtype), bx = b.to(dtype);
    std::vector<NormCase> cases = {
        {"copy", "aten", [](const Tensor& t) { return t.clone(); }, {}},
        {"layernorm", "aten", [&](const Tensor& t) { return at::layer_norm(t, {C}, wx, bx, 1e-6); }, {wx, bx}},
        {"rmsnorm", "aten", [&](const Tensor& t) { return at::rms_norm(t, {C}, wx, 1e-6); }, {wx}},
        {"dyt", "aten", [&](const Tensor& t) { return dyt_aten(t, alpha, w, b, false); }, {alpha, w, b}},
    };
    std::string why;
    const bool fused = dyt_fused_available(dev, dtype, &why);
    auto fused_fwd = [&](const Tensor& t) { return dyt_fused(t, alpha, w, b, false); };
    if (fused)
      cases.push_back({"dyt", "fused", fused_fwd, {alpha, w, b}});
    else
      std::fprintf(stderr, "note: DyT fused skipped: %s\n", why.c_str());
    // On request only (--only dyt/fused:table,dyt/fused:function): the CPU bf16 kernels with
    // their tanh table forced on and off, timed in turn with the rest in the same run.
    const bool table_cases = fused && !dev.is_cuda() && dtype == torch::kBFloat16 &&
                             std::any_of(a.only.begin(), a.only.end(),
                                         [](const std::string& o) { return o.find(':') != std::string::npos; });
    if (table_cases) {
      cases.push_back({"dyt", "fused:table", fused_fwd, {alpha, w, b}, 1});
      cases.push_back({"dyt", "fused:function", fused_fwd, {alpha, w, b}, 0});
    }
    if (!a.only.empty()) {  // --only copy,layernorm,dyt/fused: keep those (the copy always, for the ratios)
      std::vector<NormCase> kept;
      for (auto& c : cases)
        for (const auto& o : a.only)
          if (c.layer == "copy" || (o == c.layer && c.bf16_table < 0) || o == c.layer + "/" + c.impl) {
            kept.push_back(c);
            break;
          }
      cases = kept;
    }

    std::printf("\n## %lld x %lld (%s, %.1f MiB per tensor)\n\n", static_cast<long long>(T), static_cast<long long>(C),
                a.dtype.c_str(), T * C * esize / 1048576.0);
    std::printf("| layer | impl | fwd ms | fwd+bwd ms | fwd GB/s | fwd+bwd GB/s | fwd / copy | fwd / LN | fwd+bwd / LN |\n");
    std::printf("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    // Each case's forward and forward+backward as a timed job. On the CPU the jobs take turns,
    // one call each per round (caches flushed before every call), so that a change of the
    // machine's speed during the run (seen on the shared VMs: 1.5x within minutes) moves every
    // case's samples alike and the ratios stay fair. CUDA times each job's calls back to back.
    Tensor xg = x.detach().requires_grad_(true);
    struct Job {
      size_t c;
      bool fb;
      std::function<void()> fn;
      std::vector<double> samples;
      double faults = 0;
    };
    std::vector<Job> jobs;
    for (size_t i = 0; i < cases.size(); ++i) {
      NormCase& c = cases[i];
      for (auto& p : c.params) p.requires_grad_(true);  // the forward runs under NoGradGuard
      jobs.push_back({i, false, [&c, &x] {
                        Bf16TableMode mode(c.bf16_table);
                        torch::NoGradGuard ng;
                        c.fwd(x);
                      }});
      if (c.layer != "copy")
        jobs.push_back({i, true, [&c, &xg, &dy] {
                          Bf16TableMode mode(c.bf16_table);
                          xg.mutable_grad() = Tensor();
                          for (auto& p : c.params) p.mutable_grad() = Tensor();
                          c.fwd(xg).backward(dy);
                        }});
    }
    if (dev.is_cuda()) {
      for (auto& j : jobs) j.samples = {time_ms(j.fn, dev, warmup, repeats, flusher, true)};
    } else {
      for (auto& j : jobs)
        for (int64_t i = 0; i < warmup; ++i) j.fn();
      for (int64_t r = 0; r < repeats; ++r)
        for (auto& j : jobs) {
          flusher.flush();
          const int64_t f0 = minor_faults();
          auto t0 = std::chrono::steady_clock::now();
          j.fn();
          j.samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
          j.faults += static_cast<double>(minor_faults() - f0) / repeats;
        }
    }
    for (auto& c : cases)
      for (auto& p : c.params) p.requires_grad_(false), p.mutable_grad() = Tensor();
    double copy_fwd = NAN, ln_fwd = NAN, ln_fb = NAN;
    for (size_t i = 0; i < cases.size(); ++i) {
      const NormCase& c = cases[i];
      double f = NAN, fb = NAN, faults_f = 0, faults_fb = 0;
      for (const auto& j : jobs)
        if (j.c == i) (j.fb ? fb : f) = median(j.samples), (j.fb ? faults_fb : faults_f) = j.faults;
      // Worth a note when the faults cover more than 1% of the output's pages.
      const double pages = static_cast<double>(T * C * esize) / 4096.0;
      if (faults_f > 0.01 * pages || faults_fb > 0.01 * pages)
        std::fprintf(stderr,
                     "note: %s/%s at %lldx%lld: %.0f (fwd) and %.0f (fwd+bwd) page faults per timed call: its time "
                     "includes the kernel zeroing fresh pages for the allocator\n",
                     c.layer.c_str(), c.impl.c_str(), static_cast<long long>(T), static_cast<long long>(C), faults_f,
                     faults_fb);
      if (c.layer == "copy") copy_fwd = f;
      if (c.layer == "layernorm") ln_fwd = f, ln_fb = fb;
      const double bytes = static_cast<double>(T * C * esize);
      const double f_gbps = 2 * bytes / (f * 1e6), fb_gbps = 5 * bytes / (fb * 1e6);
      std::printf("| %s | %s | %s | %s | %.1f | %s | %s | %s | %s |\n", c.layer.c_str(), c.impl.c_str(), ms(f).c_str(),
                  ms(fb).c_str(), f_gbps, std::isfinite(fb) ? fmt::format("{:.1f}", fb_gbps).c_str() : "-",
                  ratio(f, copy_fwd).c_str(), ratio(f, ln_fwd).c_str(), ratio(fb, ln_fb).c_str());
      csv += fmt::format("{},{},{},{},{},{},{:.4f},{},{:.2f},{}\n", c.layer, c.impl, dev.is_cuda() ? "cuda" : "cpu",
                         a.dtype, T, C, f, std::isfinite(fb) ? fmt::format("{:.4f}", fb) : "",
                         f_gbps, std::isfinite(fb) ? fmt::format("{:.2f}", fb_gbps) : "");
    }
    std::fflush(stdout);
  }
  std::printf("\nGB/s counts the nominal traffic: forward reads x and writes y (2 tensors); forward+backward "
              "adds reading x and dy and writing dx (5 tensors).\n");
  if (!a.csv.empty()) {
    atomic_write(a.csv, csv);
    std::printf("CSV written to %s\n", a.csv.c_str());
  }
  return 0;
}

// ---- whole-model benchmark -----------------------------------------------------------------------------
namespace {

struct NormVariant {
  std::string name;
  NormOptions opts;
};

}  // namespace

int cmd_bench_model(const BenchModelArgs& a) {
  const torch::Device dev = bench_device(a.device);
  if (a.threads > 0) at::set_num_threads(static_cast<int>(a.threads));
  const bool cuda = dev.is_cuda();
  const bool bf16 = a.dtype == "bf16";
  std::vector<std::string> models = a.models.empty() ? std::vector<std::string>{"vit_b16", "llama7b"} : a.models;
  const int64_t repeats = a.repeats > 0 ? a.repeats : (cuda ? 10 : 3);
  std::vector<NormVariant> variants;
  auto add = [&](const std::string& name, const std::string& type, const std::string& impl) {
    NormOptions o;
    o.type = type, o.impl = impl;
    variants.push_back({name, o});
  };
  add("LayerNorm", "layernorm", "auto");
  add("RMSNorm", "rmsnorm", "auto");
  add("DyT aten", "dyt", "aten");
  if (dyt_fused_available(dev, bf16 ? torch::kBFloat16 : torch::kFloat, nullptr)) add("DyT fused", "dyt", "fused");
  CacheFlusher no_flush(dev, false);
  const std::string setup = fmt::format("{}_{}_torch{}", cuda ? "cuda" : "cpu", a.dtype, TORCH_VERSION);
  std::string csv = "model,norm,batch,tokens,layers,norm_fwd_ms,norm_fwdbwd_ms,model_fwd_ms,model_fwdbwd_ms,device,dtype,torch\n";
  std::string md = fmt::format("# dyt bench model ({}, {}, LibTorch {}, {} thread(s), median of {})\n", dev.str(), a.dtype,
                               TORCH_VERSION, at::get_num_threads(), repeats);
  for (const auto& mname : models) {
    if (mname != "vit_b16" && mname != "llama7b")
      throw ConfigError(Origin{"--model"}, "", unknown_name_message("benchmark model", mname, {"llama7b", "vit_b16"}));
    const bool vit = mname == "vit_b16";
    const int64_t batch = vit ? (a.batch > 0 ? a.batch : (cuda ? 256 : 8)) : 1;
    const int64_t tokens = vit ? 197 : (a.tokens > 0 ? a.tokens : (cuda ? 4096 : 512));
    const int64_t layers = vit ? 12 : (a.layers > 0 ? a.layers : (cuda ? 32 : 2));
    const int64_t dim = vit ? 768 : 4096;
    const int64_t norms_per_model = vit ? 2 * layers + 1 : 2 * layers + 1;
    md += fmt::format("\n## {} (batch {}, {} tokens, {} layers, {} norm layers)\n\n", mname, batch, tokens, layers, norms_per_model);
    md += "| norm | norm layers fwd ms | norm layers fwd+bwd ms | model fwd ms | model fwd+bwd ms | model fwd+bwd vs LN |\n";
    md += "|---|---:|---:|---:|---:|---:|\n";
    double ln_model_fb = NAN;
    for (const auto& v : variants) {
      torch::manual_seed(0);
      std::shared_ptr<torch::nn::Module> net;
      std::function<Tensor(const Tensor&)> forward;
      Tensor input;
      if (vit) {
        ViTOptions o;
        o.norm = v.opts;
        auto m = std::make_shared<ViTImpl>(o);
        net = m;
        forward = [m](const Tensor& x) { return m->forward(x); };
        input = torch::randn({batch, 3, 224, 224}, torch::TensorOptions().device(dev));
      } else {
        NormFactory nf = make_norm_factory(v.opts);
        auto holder = std::make_shared<torch::nn::Module>();
        auto list = holder->register_module("layers", torch::nn::ModuleList());
        for (int64_t i = 0; i < layers; ++i) list->push_back(LlamaBlock(dim, 32, 11008, nf));
        auto final_norm = holder->register_module("norm", nf(dim));
        net = holder;
        forward = [list, final_norm](const Tensor& x) {
          Tensor h = x;
          for (const auto& blk : *list) h = blk->as<LlamaBlockImpl>()->forward(h);
          return final_norm->forward(h);
        };
        input = torch::randn({1, tokens, dim}, torch::TensorOptions().device(dev));
      }
      net->to(dev);
      // Norm layers alone: one layer's fwd (and fwd+bwd) at the model's activation shape, times
      // the number of norm layers.
      auto norm = make_norm_factory(v.opts)(dim);
      norm->to(dev);
      auto act_dtype = bf16 ? torch::kBFloat16 : torch::kFloat;
      Tensor act = torch::randn({batch, tokens, dim}, torch::TensorOptions().dtype(act_dtype).device(dev));
      Tensor dact = torch::randn_like(act);
      if (bf16 && v.opts.type != "dyt") norm->to(torch::kBFloat16);  // ATen norms want matching dtypes
      double nf_ms = time_ms([&] {
        torch::NoGradGuard ng;
        norm->forward(act);
      }, dev, 2, repeats, no_flush, false) * norms_per_model;
      Tensor actg = act.detach().requires_grad_(true);
      double nfb_ms = time_ms([&] {
        actg.mutable_grad() = Tensor();
        norm->zero_grad();
        norm->forward(actg).backward(dact);
      }, dev, 2, repeats, no_flush, false) * norms_per_model;
      double mf_ms = time_ms([&] {
        torch::NoGradGuard ng;
        AutocastGuard ac(bf16, dev.type());
        forward(input);
      }, dev, 1, repeats, no_flush, false);
      double mfb_ms = time_ms([&] {
        net->zero_grad();
        Tensor out;
        {
          AutocastGuard ac(bf16, dev.type());
          out = forward(input);
        }
        out.to(torch::kFloat).square().mean().backward();
      }, dev, 1, repeats, no_flush, false);
      if (v.name == "LayerNorm") ln_model_fb = mfb_ms;
      md += fmt::format("| {} | {:.2f} | {:.2f} | {:.1f} | {:.1f} | {} |\n", v.name, nf_ms, nfb_ms, mf_ms, mfb_ms, ratio(mfb_ms, ln_model_fb));
      csv += fmt::format("{},{},{},{},{},{:.4f},{:.4f},{:.4f},{:.4f},{},{},{}\n", mname, v.name, batch, tokens, layers, nf_ms,
                         nfb_ms, mf_ms, mfb_ms, cuda ? "cuda" : "cpu", a.dtype, TORCH_VERSION);
      std::printf("%s %s: norm fwd %.2f ms, norm fwd+bwd %.2f ms, model fwd %.1f ms, model fwd+bwd %.1f ms\n",
                  mname.c_str(), v.name.c_str(), nf_ms, nfb_ms, mf_ms, mfb_ms);
      std::fflush(stdout);
    }
  }
  const fs::path dir = a.out_dir.empty() ? suite_home() / "results" / "bench" : fs::path(a.out_dir);
  atomic_write(dir / ("model_" + setup + ".csv"), csv);
  atomic_write(dir / ("model_" + setup + ".md"), md);
  std::printf("\n%s\nwritten to %s/model_%s.{csv,md}\n", md.c_str(), dir.c_str(), setup.c_str());
  return 0;
}

// ---- training throughput ----------------------------------------------------------------------------
// Images per second and peak GPU memory of full training steps (forward under autocast, loss,
// backward, the suite's AdamW with the recipe's parameter groups), as timm's train benchmark
// measures them: random images and labels already on the device, so the input pipeline is out.
int cmd_bench_train(const BenchTrainArgs& a) {
  const torch::Device dev = bench_device(a.device);
  if (a.threads > 0) at::set_num_threads(static_cast<int>(a.threads));
  const bool cuda = dev.is_cuda();
  const bool bf16 = a.dtype == "bf16";
  const int64_t batch = a.batch > 0 ? a.batch : (cuda ? 256 : 8);
  const int64_t steps = a.steps > 0 ? a.steps : (cuda ? 30 : 3);
  const int64_t warmup = a.warmup >= 0 ? a.warmup : (cuda ? 10 : 1);
  std::vector<std::string> norms = a.norms.empty() ? std::vector<std::string>{"layernorm", "dyt"} : a.norms;
  const std::string setup = fmt::format("{}_{}_torch{}", cuda ? "cuda" : "cpu", a.dtype, TORCH_VERSION);
  std::string md = fmt::format(
      "# dyt bench train: {} ({}), batch {}, {} autocast, AdamW ({}), {} timed steps after {} warm-up, LibTorch {}\n\n"
      "| norm | impl | ms / step | images/s | peak GiB | vs LayerNorm |\n|---|---|---:|---:|---:|---:|\n",
      a.model, dev.str(), batch, bf16 ? "bf16" : "no", cuda ? "fused multi-tensor kernel" : "per-parameter ops", steps,
      warmup, TORCH_VERSION);
  std::string csv = "model,norm,impl,batch,ms_per_step,images_per_s,peak_gib,device,dtype,torch\n";
  double ln_ips = NAN;
  for (const auto& spec : norms) {
    // "dyt" = the layer with the fused kernel; "dyt:aten" = the same layer as tensor ops.
    const auto colon = spec.find(':');
    NormOptions no;
    no.type = spec.substr(0, colon);
    no.impl = colon == std::string::npos ? "auto" : spec.substr(colon + 1);
    std::vector<std::string> sets = {"norm.type=" + no.type, "norm.impl=" + no.impl};
    auto model = build_model_preset(a.model, sets);
    auto* clf = dynamic_cast<ViTImpl*>(model.get());
    if (!clf) throw ConfigError(Origin{"--model"}, "", "'" + a.model + "' is not a ViT classifier preset (vit_*)");
    model->to(dev);
    model->train();
    OptimOptions oo;
    Optimizer opt(oo, make_param_groups(*model, oo.weight_decay, 1.0));
    const ViTOptions& in = clf->opts;
    torch::manual_seed(0);
    Tensor images = torch::randn({batch, in.in_chans, in.img_size, in.img_size}, torch::TensorOptions().device(dev));
    Tensor labels = torch::randint(in.num_classes, {batch}, torch::TensorOptions().dtype(torch::kLong).device(dev));
    auto step = [&] {
      opt.zero_grad();
      Tensor loss;
      {
        AutocastGuard ac(bf16, dev.type());
        loss = torch::nn::functional::cross_entropy(clf->forward(images).to(torch::kFloat), labels);
      }
      loss.backward();
      opt.step(1e-4);
    };
    for (int64_t i = 0; i < warmup; ++i) step();
    sync(dev);
#ifdef DYT_WITH_CUDA
    if (cuda) c10::cuda::CUDACachingAllocator::resetPeakStats(dev.index());
#endif
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < steps; ++i) step();
    sync(dev);
    const double ms_step = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / steps;
    double peak_gib = NAN;
#ifdef DYT_WITH_CUDA
    if (cuda) {
      auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index());
      peak_gib = st.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak / 1073741824.0;
    }
#endif
    if (!a.profile_dir.empty()) {
      // A Kineto trace (Chrome JSON, as torch.profiler writes) of a few more steps, for
      // scripts/trace_kernels.py to set kernel by kernel beside timm's.
      namespace prof = torch::profiler::impl;
      std::set<prof::ActivityType> acts = {prof::ActivityType::CPU};
      if (cuda) acts.insert(prof::ActivityType::CUDA);
      torch::autograd::profiler::prepareProfiler(prof::ProfilerConfig(prof::ProfilerState::KINETO), acts);
      torch::autograd::profiler::enableProfiler(prof::ProfilerConfig(prof::ProfilerState::KINETO), acts);
      for (int i = 0; i < 3; ++i) step();
      sync(dev);
      auto result = torch::autograd::profiler::disableProfiler();
      fs::create_directories(a.profile_dir);
      const fs::path trace = fs::path(a.profile_dir) / fmt::format("trace_dyt_{}_{}.json", no.type, no.impl);
      result->save(trace.string());
      std::printf("profile of 3 steps written to %s\n", trace.c_str());
    }
    const double ips = batch * 1000.0 / ms_step;
    if (no.type == "layernorm") ln_ips = ips;
    md += fmt::format("| {} | {} | {:.1f} | {:.0f} | {} | {} |\n", no.type, no.impl, ms_step, ips,
                      std::isfinite(peak_gib) ? fmt::format("{:.1f}", peak_gib) : "-", ratio(ips, ln_ips));
    csv += fmt::format("{},{},{},{},{:.3f},{:.1f},{},{},{},{}\n", a.model, no.type, no.impl, batch, ms_step, ips,
                       std::isfinite(peak_gib) ? fmt::format("{:.3f}", peak_gib) : "", cuda ? "cuda" : "cpu", a.dtype,
                       TORCH_VERSION);
    std::printf("%s %s/%s: %.1f ms/step, %.0f images/s, peak %s GiB\n", a.model.c_str(), no.type.c_str(),
                no.impl.c_str(), ms_step, ips, std::isfinite(peak_gib) ? fmt::format("{:.1f}", peak_gib).c_str() : "-");
    std::fflush(stdout);
  }
  md += "\nimages/s = batch / (wall time of the timed steps / steps); peak = the caching allocator's peak of\n"
        "allocated bytes over the timed steps (parameters, optimizer state, activations).\n";
  const fs::path dir = a.out_dir.empty() ? suite_home() / "results" / "bench" : fs::path(a.out_dir);
  atomic_write(dir / ("train_" + a.model + "_" + setup + ".csv"), csv);
  atomic_write(dir / ("train_" + a.model + "_" + setup + ".md"), md);
  std::printf("\n%s\nwritten to %s/train_%s_%s.{csv,md}\n", md.c_str(), dir.c_str(), a.model.c_str(), setup.c_str());
  return 0;
}

int cmd_bench_ddp(const BenchDdpArgs& a) {
  const DistEnv env = read_dist_env();
  const int64_t world = env.world;
  if (a.batch % world != 0)
    throw ConfigError(Origin{"--batch"}, "", fmt::format("total batch {} does not split over {} processes", a.batch, world));
  const int64_t threads = a.threads > 0 ? a.threads
                                        : std::max<int64_t>(1, static_cast<int64_t>(::sysconf(_SC_NPROCESSORS_ONLN)) /
                                                                   std::max<int64_t>(1, env.local_world));
  at::set_num_threads(static_cast<int>(threads));
  const torch::Device dev = torch::kCPU;
  std::unique_ptr<Distributed> dist;
  if (env.distributed()) dist = std::make_unique<Distributed>(env, dev, std::chrono::minutes(30));
  const bool lead = env.rank == 0;

  std::vector<std::string> sets = a.sets;
  sets.push_back("norm.type=" + a.norm);
  torch::manual_seed(0);
  auto model = build_model_preset(a.model, sets);
  auto* clf = dynamic_cast<ViTImpl*>(model.get());
  if (!clf) throw ConfigError(Origin{"--model"}, "", "'" + a.model + "' is not a ViT classifier preset (vit_*)");
  model->train();
  OptimOptions oo;
  Optimizer opt(oo, make_param_groups(*model, oo.weight_decay, 1.0));
  std::vector<Tensor> params;
  std::vector<std::string> names;
  for (const auto& p : model->named_parameters(true)) params.push_back(p.value()), names.push_back(p.key());
  const ViTOptions& in = clf->opts;
  auto batch_of = [&](int64_t n) {
    return std::make_pair(torch::randn({n, in.in_chans, in.img_size, in.img_size}),
                          torch::randint(in.num_classes, {n}, torch::TensorOptions().dtype(torch::kLong)));
  };
  GradientReducer* reducer = nullptr;
  auto step = [&](const std::pair<Tensor, Tensor>& b, bool sync_grads) {
    opt.zero_grad();
    Tensor loss = torch::nn::functional::cross_entropy(clf->forward(b.first), b.second);
    if (sync_grads && reducer) reducer->prepare_for_backward();
    loss.backward();
    opt.step(1e-4);
  };
  auto timed = [&](const std::function<void()>& fn) {
    for (int64_t i = 0; i < a.warmup; ++i) fn();
    if (dist) dist->barrier();
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < a.steps; ++i) fn();
    if (dist) dist->barrier();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / a.steps;
  };
  // 1. One process alone at the total batch, with all the node's threads (rank 0 while the others
  // wait: the cores are its).
  double ms_one = NAN;
  if (lead) {
    at::set_num_threads(static_cast<int>(threads * std::max<int64_t>(1, env.local_world)));
    auto full = batch_of(a.batch);
    for (int64_t i = 0; i < a.warmup; ++i) step(full, false);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < a.steps; ++i) step(full, false);
    ms_one = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / a.steps;
    at::set_num_threads(static_cast<int>(threads));
  }
  double ms_ddp = NAN, ms_local = NAN, ms_allreduce = NAN;
  int64_t buckets = 0;
  const double grad_mib = static_cast<double>(count_parameters(*model)) * 4.0 / 1048576.0;
  if (dist) {
    dist->barrier();
    dist->broadcast(params);
    GradientReducer r(*dist, params, names);
    reducer = &r;
    buckets = r.buckets();
    auto part = batch_of(a.batch / world);
    ms_ddp = timed([&] { step(part, true); });      // 2. the DDP step: backward with the bucketed all-reduce
    ms_local = timed([&] { step(part, false); });   // 3. the same step without gradient sync: compute alone
    std::vector<Tensor> grads;                       // 4. the all-reduce alone: every gradient, in one flat buffer
    for (const auto& p : params) grads.push_back(torch::zeros_like(p));
    ms_allreduce = timed([&] { dist->all_reduce_sum(grads); });
  }
  if (!lead) return 0;
  const std::string host = [] {
    char h[256] = {0};
    ::gethostname(h, sizeof h - 1);
    return std::string(h);
  }();
  std::string md = fmt::format(
      "# dyt bench ddp: {} ({}{}), total batch {} over {} process(es) ({}), {} thread(s) each, CPU, LibTorch {}\n\n"
      "{:.2f} MiB of fp32 gradients in {} bucket(s); {} timed steps after {} warm-up; host {}\n\n"
      "| measurement | ms / step | images/s |\n|---|---:|---:|\n",
      a.model, a.norm, a.sets.empty() ? "" : fmt::format(", {}", fmt::join(a.sets, " ")), a.batch, world, dist ? dist->backend() : "one process", threads, TORCH_VERSION,
      grad_mib, buckets, a.steps, a.warmup, host);
  auto row = [&](const std::string& what, double ms, int64_t images) {
    md += fmt::format("| {} | {:.2f} | {} |\n", what, ms, images > 0 && std::isfinite(ms) ? fmt::format("{:.0f}", images * 1000.0 / ms) : "-");
  };
  row(fmt::format("1 process, batch {}, {} thread(s) (the others idle)", a.batch,
                  threads * std::max<int64_t>(1, env.local_world)),
      ms_one, a.batch);
  std::string csv = "model,norm,total_batch,world,threads,ms_one,ms_ddp,ms_local,ms_allreduce,buckets,grad_mib\n";
  if (dist) {
    row(fmt::format("{} processes x {}: DDP step (all-reduce overlapped with backward)", world, a.batch / world), ms_ddp, a.batch);
    row(fmt::format("{} processes x {}: same step, no gradient sync (compute alone)", world, a.batch / world), ms_local, a.batch);
    row(fmt::format("all-reduce of all gradients alone ({} processes, {})", world, dist->backend()), ms_allreduce, 0);
    md += fmt::format(
        "\nspeed-up of {} processes over 1 at the same total batch: {:.2f}x. On one CPU both use the same cores, so "
        "about 1x is the ceiling; with a GPU per process it is {}x. Gradient sync adds {:.2f} ms to the step ({:.0f}% "
        "of it), against {:.2f} ms for the all-reduce alone: more than that when ranks wait for each other and copy "
        "gradients into buckets, less when the all-reduce hides behind backward.\n",
        world, ms_one / ms_ddp, world, ms_ddp - ms_local, 100.0 * (ms_ddp - ms_local) / ms_ddp, ms_allreduce);
  }
  csv += fmt::format("{},{},{},{},{},{:.3f},{:.3f},{:.3f},{:.3f},{},{:.3f}\n", a.model, a.norm, a.batch, world, threads,
                     ms_one, ms_ddp, ms_local, ms_allreduce, buckets, grad_mib);
  const fs::path dir = a.out_dir.empty() ? suite_home() / "results" / "bench" : fs::path(a.out_dir);
  std::string stem = fmt::format("ddp_{}_{}_w{}_b{}", a.model, a.norm, world, a.batch);
  for (const auto& s : a.sets) stem += "_" + s;
  atomic_write(dir / (stem + ".md"), md);
  atomic_write(dir / (stem + ".csv"), csv);
  std::printf("%s\nwritten to %s/%s.{md,csv}\n", md.c_str(), dir.c_str(), stem.c_str());
  return 0;
}

}  // namespace dyt

namespace dyt {

int cmd_bench_data(const BenchDataArgs& a) {
  const int64_t cores = std::max<int64_t>(1, static_cast<int64_t>(::sysconf(_SC_NPROCESSORS_ONLN)));
  std::vector<int64_t> workers = a.workers.empty() ? std::vector<int64_t>{1, cores} : a.workers;
  std::sort(workers.begin(), workers.end());
  workers.erase(std::unique(workers.begin(), workers.end()), workers.end());
  for (int64_t w : workers)
    if (w < 1) throw ConfigError(Origin{"--workers"}, "", "worker counts must be >= 1");
  for (const auto& s : a.splits)
    if (s != "train" && s != "val") throw ConfigError(Origin{"--split"}, "", "'" + s + "': use train and/or val");
  at::set_num_threads(1);
  cv::setNumThreads(1);  // as in runs: the loader's threads are the parallelism
  std::string python = a.python;
  if (python.empty()) {
    const fs::path venv = suite_home() / ".venv" / "bin" / "python";
    python = fs::exists(venv) ? venv.string() : "none";
  }
  const fs::path script = suite_home() / "scripts" / "bench_timm_data.py";
  const std::vector<double> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  AugmentOptions train_o;  // the DyT / ConvNeXt ImageNet recipe (configs/recipes/imagenet_supervised.yaml)
  train_o.train_crop = "random_resized", train_o.hflip = 0.5, train_o.randaugment = "rand-m9-mstd0.5-inc1";
  train_o.random_erasing = 0.25, train_o.interpolation = "bicubic";
  AugmentOptions eval_o;
  eval_o.interpolation = "bicubic", eval_o.crop_pct = 0.875;

  auto timm_rate = [&](const std::string& split, int64_t w) -> double {
    if (python == "none") return NAN;
    const std::string cmd = fmt::format("'{}' '{}' --tree '{}' --split {} --workers {} --images {} --batch {} --size {} 2>&1",
                                        python, script.string(), a.tree, split, w, a.images, a.batch, a.size);
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      char buf[4096];
      while (std::fgets(buf, sizeof buf, p)) out += buf;
      if (::pclose(p) != 0) {
        std::fprintf(stderr, "timm side failed (%s):\n%s\n", cmd.c_str(), out.c_str());
        return NAN;
      }
    }
    const auto k = out.rfind("\"images_per_s\": ");
    return k == std::string::npos ? NAN : std::strtod(out.c_str() + k + 16, nullptr);
  };

  std::string md = fmt::format(
      "# dyt bench data: {} ({} images timed per row after the first batch, batch {}, crop {})\n\n"
      "Training transform: RandomResizedCrop (bicubic), flip, rand-m9-mstd0.5-inc1, normalise, random erasing 0.25; "
      "evaluation: resize to 256 (bicubic, antialiased), centre crop. timm side: scripts/bench_timm_data.py "
      "(torchvision ImageFolder + timm create_transform + torch DataLoader, same workers), {}.\n\n"
      "| split | workers | dyt images/s | timm images/s | dyt / timm | dyt images/s per worker |\n"
      "|---|---:|---:|---:|---:|---:|\n",
      a.tree, a.images, a.batch, a.size, python == "none" ? "not run (--python none or no .venv)" : python);
  std::string csv = "split,workers,dyt_images_per_s,timm_images_per_s\n";
  double per_core = NAN;
  for (const auto& split : a.splits) {
    const bool train = split == "train";
    DatasetRequest r;
    r.root = a.tree, r.split = split;
    DatasetPtr ds = dataset_registry().get("image_folder").open(r);
    auto tf = std::make_shared<ImageTransform>(train ? train_o : eval_o, train, a.size, 3, mean, std);
    for (int64_t w : workers) {
      LoaderOptions lo;
      lo.batch_size = a.batch, lo.shuffle = train, lo.drop_last = false, lo.workers = w, lo.prefetch = 2 * w;
      Loader loader(ds, tf, lo);
      int64_t seen = 0, epoch = 0;
      bool started = false;
      auto t0 = std::chrono::steady_clock::now();
      while (seen < a.images) {
        loader.start_epoch(epoch++);
        Batch b;
        while (loader.next(b)) {
          if (!started) {
            started = true, t0 = std::chrono::steady_clock::now();
            continue;
          }
          seen += b.images.size(0);
          if (seen >= a.images) break;
        }
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double ours = seen / secs, theirs = timm_rate(split, w);
      if (train && w == 1) per_core = ours;
      md += fmt::format("| {} | {} | {:.0f} | {} | {} | {:.0f} |\n", split, w, ours,
                        std::isfinite(theirs) ? fmt::format("{:.0f}", theirs) : "-", ratio(ours, theirs), ours / w);
      csv += fmt::format("{},{},{:.2f},{:.2f}\n", split, w, ours, theirs);
      std::fprintf(stderr, "%s, %lld worker(s): dyt %.0f images/s, timm %s\n", split.c_str(), static_cast<long long>(w),
                   ours, std::isfinite(theirs) ? fmt::format("{:.0f} images/s", theirs).c_str() : "-");
    }
  }
  if (std::isfinite(per_core))
    md += fmt::format("\nTraining pipeline, one worker: {:.0f} images/s, i.e. {:.0f} images/s on 16 such cores if it "
                      "scales linearly (one H200 trains ViT-B/16 at 2,700-3,500 images/s).\n",
                      per_core, 16 * per_core);
  const fs::path dir = a.out_dir.empty() ? suite_home() / "results" / "bench" : fs::path(a.out_dir);
  atomic_write(dir / "data.md", md);
  atomic_write(dir / "data.csv", csv);
  std::printf("%s\nwritten to %s/data.{md,csv}\n", md.c_str(), dir.c_str());
  return 0;
}

}  // namespace dyt
