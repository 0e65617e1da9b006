// Norm-layer probes and their analysis: captured input/output mappings, tanh fits, alpha vs 1/std.
#include "runner/train/norm_probes.h"

#include <cmath>

#include "models/model.h"
#include "core/io.h"

namespace dyt {
using json = nlohmann::json;
using torch::Tensor;

TanhFit fit_tanh(const Tensor& xin, const Tensor& yin) {
  Tensor x = xin.to(torch::kDouble).flatten(), y = yin.to(torch::kDouble).flatten();
  TanhFit best;
  double best_sse = INFINITY;
  for (int i = 0; i <= 240; ++i) {
    const double b = std::pow(10.0, -3.0 + 5.0 * i / 240.0);
    Tensor t = torch::tanh(b * x);
    const double tt = (t * t).sum().item<double>();
    if (tt <= 0) continue;
    const double a = (y * t).sum().item<double>() / tt;
    const double sse = (y - a * t).pow(2).sum().item<double>();
    if (sse < best_sse) best_sse = sse, best.a = a, best.b = b;
  }
  best.near_linear = ((best.b * x).abs() <= 0.5).to(torch::kDouble).mean().item<double>();
  const double vx = x.var(false).item<double>(), vy = y.var(false).item<double>();
  const double cov = ((x - x.mean()) * (y - y.mean())).mean().item<double>();
  best.linear_r2 = vx > 0 && vy > 0 ? cov * cov / (vx * vy) : 0.0;
  return best;
}

json capture_norm_mapping(torch::nn::Module& model, const std::function<bool(int64_t)>& run_batch, int64_t max_points,
                          const std::filesystem::path& file) {
  struct Store {
    std::vector<Tensor> x, y, c;
    int64_t have = 0;
  };
  auto layers = norm_layers(model);
  std::map<std::string, Store> store;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  for (auto& [name, layer] : layers) {
    Store* s = &store[name];
    layer->capture = [s, max_points, &gen](const Tensor& in, const Tensor& out) {
      if (s->have >= max_points) return;
      const int64_t C = in.size(-1);
      Tensor x = in.detach().reshape({-1, C}).to(torch::kCPU, torch::kFloat);
      Tensor y = out.detach().reshape({-1, C}).to(torch::kCPU, torch::kFloat);
      const int64_t want = std::min<int64_t>(max_points - s->have, std::max<int64_t>(1, x.numel() / 8));
      Tensor idx = torch::randint(x.numel(), {want}, gen, torch::TensorOptions().dtype(torch::kLong));
      s->x.push_back(x.flatten().index_select(0, idx));
      s->y.push_back(y.flatten().index_select(0, idx));
      s->c.push_back(idx.remainder(C));
      s->have += want;
    };
  }
  {
    torch::NoGradGuard ng;
    for (int64_t i = 0; run_batch(i); ++i) {
      bool all = true;
      for (auto& [n, s] : store) all &= s.have >= max_points;
      if (all) break;
    }
  }
  std::vector<NamedTensor> tensors;
  json report = json::array();
  for (auto& [name, layer] : layers) {
    layer->capture = nullptr;
    Store& s = store[name];
    if (s.x.empty()) continue;
    Tensor x = torch::cat(s.x), y = torch::cat(s.y), c = torch::cat(s.c);
    tensors.push_back({name + ".x", x});
    tensors.push_back({name + ".y", y});
    tensors.push_back({name + ".channel", c});
    TanhFit f = fit_tanh(x, y);
    report.push_back({{"layer", name}, {"points", x.numel()}, {"tanh_a", f.a}, {"tanh_b", f.b},
                      {"near_linear_fraction", f.near_linear}, {"linear_r2", f.linear_r2}});
  }
  write_safetensors(file, tensors, {{"format", "dyt-norm-mapping"}});
  return report;
}

double alpha_invstd_correlation(const json& line) {
  std::vector<double> a, inv;
  for (const auto& l : line.value("layers", json::array())) {
    if (!l.contains("alpha") || !l["input_std"].is_number() || l["input_std"].get<double>() <= 0) continue;
    a.push_back(l["alpha"].get<double>());
    inv.push_back(1.0 / l["input_std"].get<double>());
  }
  const size_t n = a.size();
  if (n < 3) return std::nan("");
  double ma = 0, mi = 0;
  for (size_t i = 0; i < n; ++i) ma += a[i] / n, mi += inv[i] / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) sab += (a[i] - ma) * (inv[i] - mi), saa += (a[i] - ma) * (a[i] - ma), sbb += (inv[i] - mi) * (inv[i] - mi);
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : std::nan("");
}

}  // namespace dyt
