// Training parts: parameter groups, AdamW/SGD, schedule, EMA, autocast, checkpoints, metrics, progress.
#include "runner/train/components.h"

#include <ctime>
#include "runner/run/run_folder.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <regex>

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;
using torch::Tensor;

std::vector<ParamGroup> make_param_groups(const Model& model, double weight_decay, double layer_decay, bool decay_all) {
  const auto skip = model.no_weight_decay();
  std::map<std::pair<int64_t, bool>, ParamGroup> groups;
  const int64_t L = model.num_layers();
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    const std::string& name = item.key();
    const bool no_decay = !decay_all && (p.dim() <= 1 || (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0) ||
                          std::find(skip.begin(), skip.end(), name) != skip.end());
    const int64_t layer = layer_decay < 1.0 ? model.layer_id(name) : 0;
    ParamGroup& g = groups[{layer, no_decay}];
    g.names.push_back(name);
    g.params.push_back(p);
    g.weight_decay = no_decay ? 0.0 : weight_decay;
    g.lr_scale = layer_decay < 1.0 ? std::pow(layer_decay, static_cast<double>(L - 1 - layer)) : 1.0;
  }
  std::vector<ParamGroup> out;
  for (auto& kv : groups) out.push_back(std::move(kv.second));
  return out;
}

Optimizer::Optimizer(const OptimOptions& o, std::vector<ParamGroup> groups) : o_(o), groups_(std::move(groups)) {
  for (const auto& g : groups_) {
    std::vector<Tensor> m, v;
    for (const auto& p : g.params) {
      m.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      if (o_.name == "adamw") v.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    }
    m_.push_back(std::move(m));
    v_.push_back(std::move(v));
  }
}

void Optimizer::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.mutable_grad() = Tensor();
}

bool Optimizer::fused_adamw_step(double lr_peak) {
  if (o_.name != "adamw") return false;
  for (const auto& g : groups_)
    for (const auto& p : g.params)
      if (!(p.is_cuda() || force_fused_) || p.scalar_type() != torch::kFloat) return false;
  if (groups_.empty() || groups_[0].params.empty()) return false;
  if (!step_t_.defined()) step_t_ = torch::zeros({}, groups_[0].params[0].options());
  step_t_.fill_(static_cast<double>(steps_));
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    std::vector<Tensor> ps, gs, ms, vs, steps;
    for (size_t i = 0; i < g.params.size(); ++i) {
      if (!g.params[i].grad().defined()) continue;
      ps.push_back(g.params[i]);
      gs.push_back(g.params[i].grad());
      ms.push_back(m_[gi][i]);
      vs.push_back(v_[gi][i]);
      steps.push_back(step_t_);
    }
    if (ps.empty()) continue;
    at::_fused_adamw_(ps, gs, ms, vs, /*max_exp_avg_sqs=*/{}, steps, lr_peak * g.lr_scale, o_.betas[0], o_.betas[1],
                      g.weight_decay, o_.eps, /*amsgrad=*/false, /*maximize=*/false);
  }
  return true;
}

void Optimizer::step(double lr_peak) {
  torch::NoGradGuard no_grad;
  ++steps_;
  if (fused_adamw_step(lr_peak)) return;
  const double b1 = o_.betas[0], b2 = o_.betas[1];
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double bc2 = 1.0 - std::pow(b2, static_cast<double>(steps_));
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const ParamGroup& g = groups_[gi];
    const double lr = lr_peak * g.lr_scale;
    for (size_t i = 0; i < g.params.size(); ++i) {
      Tensor p = g.params[i];
      const Tensor& grad = p.grad();
      if (!grad.defined()) continue;
      if (o_.name == "adamw") {
        // PyTorch AdamW: decoupled decay, then the bias-corrected Adam step.
        if (g.weight_decay > 0) p.mul_(1.0 - lr * g.weight_decay);
        Tensor& m = m_[gi][i];
        Tensor& v = v_[gi][i];
        m.lerp_(grad, 1.0 - b1);
        v.mul_(b2).addcmul_(grad, grad, 1.0 - b2);
        Tensor denom = (v.sqrt() / std::sqrt(bc2)).add_(o_.eps);
        p.addcdiv_(m, denom, -lr / bc1);
      } else {  // SGD with momentum and coupled weight decay (torch.optim.SGD)
        Tensor d = g.weight_decay > 0 ? grad.add(p, g.weight_decay) : grad;
        Tensor& buf = m_[gi][i];
        if (steps_ == 1) buf.copy_(d);
        else buf.mul_(o_.momentum).add_(d);
        p.add_(buf, -lr);
      }
    }
  }
}

std::vector<NamedTensor> Optimizer::state() const {
  std::vector<NamedTensor> out;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < groups_[gi].names.size(); ++i) {
      out.push_back({"optim.m." + groups_[gi].names[i], m_[gi][i]});
      if (!v_[gi].empty()) out.push_back({"optim.v." + groups_[gi].names[i], v_[gi][i]});
    }
  out.push_back({"optim.steps", torch::tensor({steps_}, torch::kLong)});
  return out;
}

std::vector<Tensor> Optimizer::state_tensors() const {
  std::vector<Tensor> out;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    out.insert(out.end(), m_[gi].begin(), m_[gi].end());
    out.insert(out.end(), v_[gi].begin(), v_[gi].end());
  }
  return out;
}

void Optimizer::load_state(const SafeTensorsFile& f) {
  torch::NoGradGuard no_grad;
  auto need = [&](const std::string& name) -> const Tensor& {
    const Tensor* t = f.find(name);
    if (!t) throw IoError("checkpoint lacks optimizer state '" + name + "'; it was written by another config");
    return *t;
  };
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < groups_[gi].names.size(); ++i) {
      m_[gi][i].copy_(need("optim.m." + groups_[gi].names[i]));
      if (!v_[gi].empty()) v_[gi][i].copy_(need("optim.v." + groups_[gi].names[i]));
    }
  steps_ = need("optim.steps").item<int64_t>();
}

double scheduled_lr(const ScheduleOptions& s, double peak, double epoch, double steps_per_epoch) {
  const double warm = s.warmup_steps > 0 ? s.warmup_steps / steps_per_epoch : s.warmup_epochs;
  const double length = s.total_steps > 0 ? s.total_steps / steps_per_epoch : static_cast<double>(s.epochs);
  if (epoch < warm) return peak * epoch / warm;
  if (s.kind == "constant") return peak;
  const double t = std::min(1.0, (epoch - warm) / std::max(1e-12, length - warm));
  if (s.kind == "linear") return s.min_lr + (peak - s.min_lr) * (1.0 - t);
  return s.min_lr + (peak - s.min_lr) * 0.5 * (1.0 + std::cos(M_PI * t));
}

int64_t schedule_steps(const ScheduleOptions& s, int64_t steps_per_epoch) {
  return s.total_steps > 0 ? s.total_steps : steps_per_epoch * s.epochs;
}

double grad_norm_and_clip(const std::vector<Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().detach().to(torch::kFloat).norm(2));
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm(2).item<double>();
  if (max_norm > 0 && std::isfinite(total) && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return total;
}

void update_ema(torch::nn::Module& ema, const torch::nn::Module& model, double decay) {
  torch::NoGradGuard no_grad;
  auto ep = ema.named_parameters(true);
  auto mp = model.named_parameters(true);
  for (const auto& item : mp) ep[item.key()].lerp_(item.value().detach(), 1.0 - decay);
  auto eb = ema.named_buffers(true);
  for (const auto& item : model.named_buffers(true)) eb[item.key()].copy_(item.value());
}

std::vector<NamedTensor> state_dict(const torch::nn::Module& m, const std::string& prefix) {
  std::vector<NamedTensor> out;
  for (const auto& item : m.named_parameters(true)) out.push_back({prefix + item.key(), item.value().detach()});
  for (const auto& item : m.named_buffers(true)) out.push_back({prefix + item.key(), item.value().detach()});
  return out;
}

std::vector<std::string> load_state_dict(torch::nn::Module& m, const SafeTensorsFile& f, const std::string& prefix,
                                         bool strict) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> loaded, missing;
  auto load_one = [&](const std::string& name, Tensor target) {
    const Tensor* t = f.find(prefix + name);
    if (!t) {
      missing.push_back(prefix + name);
      return;
    }
    if (t->sizes() != target.sizes())
      throw IoError(fmt::format("tensor '{}' has shape {} in the file but {} in the model", prefix + name,
                                c10::str(t->sizes()), c10::str(target.sizes())));
    target.copy_(*t);
    loaded.push_back(name);
  };
  for (const auto& item : m.named_parameters(true)) load_one(item.key(), item.value());
  for (const auto& item : m.named_buffers(true)) load_one(item.key(), item.value());
  if (strict && !missing.empty())
    throw IoError(fmt::format("{} tensor(s) missing, e.g. '{}'", missing.size(), missing.front()));
  return loaded;
}

Precision resolve_precision(const std::string& setting, const torch::Device& device) {
  Precision p;
  const std::string s = setting == "auto" ? (device.is_cuda() ? "bf16" : "fp32") : setting;
  p.name = s == "tf32" && !device.is_cuda() ? "fp32" : s;
  p.autocast = s == "bf16" || s == "fp16";
  p.dtype = s == "fp16" ? at::kHalf : at::kBFloat16;
  p.tf32 = s == "tf32" && device.is_cuda();
  p.loss_scaling = s == "fp16";
  return p;
}

void apply_matmul_precision(const Precision& p) {
  if (!torch::cuda::is_available()) return;
  at::globalContext().setAllowTF32CuBLAS(p.tf32);
  at::globalContext().setAllowTF32CuDNN(p.tf32);
}

double cpu_matmul_slowdown(at::ScalarType dt) {
  torch::NoGradGuard ng;
  const int64_t n = 256;
  // Deterministic values (the run's random stream stays untouched), away from subnormals.
  const Tensor a = torch::linspace(-1.0, 1.0, n * n).view({n, n}), b = a.t().contiguous() + 0.5;
  auto best_ms = [](const Tensor& x, const Tensor& y) {
    (void)torch::mm(x, y);  // warm-up
    double best = 1e30;
    for (int r = 0; r < 3; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      (void)torch::mm(x, y);
      best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  // On one thread: a ratio of kernels, not of thread pools (with other work on the cores, the
  // pools' waits swamped it: an fp32 product read 16 ms instead of 0.9 on Zen 1 beside a build).
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const double fp32 = best_ms(a, b), half = best_ms(a.to(dt), b.to(dt));
  at::set_num_threads(threads);
  return half / std::max(fp32, 1e-6);
}

std::string cpu_precision_warning(const Precision& p, double slowdown) {
  if (!p.autocast || !(slowdown >= 3.0)) return "";
  return fmt::format(
      "{} autocast on this CPU: a 256x256 {} matrix product took {:.0f}x the fp32 one (no fast {} matrix "
      "multiply on this processor), so this run will be far slower than in fp32; on the CPU, prefer "
      "--set train.precision=fp32 (or auto)",
      p.name, p.name, slowdown, p.name);
}

bool LossScaler::unscale(const std::vector<Tensor>& params) {
  if (!enabled_) return false;
  torch::NoGradGuard ng;
  std::map<std::string, std::vector<Tensor>> by;  // one fused call per device and dtype
  for (const auto& p : params)
    if (p.grad().defined())
      by[p.grad().device().str() + "/" + c10::toString(p.grad().scalar_type())].push_back(p.grad());
  bool found = false;
  for (auto& [key, grads] : by) {
    const torch::Device dev = grads.front().device();
    Tensor inf = torch::zeros({1}, torch::TensorOptions().device(dev).dtype(torch::kFloat));
    Tensor inv = torch::full({1}, 1.0 / scale_, torch::TensorOptions().device(dev).dtype(torch::kFloat));
    at::_amp_foreach_non_finite_check_and_unscale_(grads, inf, inv);
    found = found || inf.item<float>() > 0;
  }
  return found;
}

void LossScaler::update(bool found_inf) {
  if (!enabled_) return;
  if (found_inf) {
    scale_ *= 0.5, good_steps_ = 0;
  } else if (++good_steps_ == 2000) {
    scale_ *= 2.0, good_steps_ = 0;
  }
}

void LossScaler::save(json& extra) const {
  if (!enabled_) return;
  extra["loss_scale"] = scale_;
  extra["loss_scale_good_steps"] = good_steps_;
}

void LossScaler::load(const json& extra) {
  if (!enabled_ || !extra.contains("loss_scale")) return;
  scale_ = extra.at("loss_scale").get<double>();
  good_steps_ = extra.value("loss_scale_good_steps", int64_t{0});
}

AutocastGuard::AutocastGuard(bool enabled, torch::DeviceType device, at::ScalarType dtype)
    : enabled_(enabled), device_(device) {
  if (!enabled_) return;
  prev_ = at::autocast::is_autocast_enabled(device_);
  at::autocast::set_autocast_enabled(device_, true);
  at::autocast::set_autocast_dtype(device_, dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_, prev_);
}

// ---- checkpoints --------------------------------------------------------------------------------------
namespace {

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  const fs::path cdir = RunFolder{dir}.checkpoints();
  if (!fs::is_directory(cdir)) return out;
  static const std::regex re(R"(step_(\d+)\.safetensors)");
  for (const auto& e : fs::directory_iterator(cdir)) {
    std::smatch m;
    std::string name = e.path().filename().string();
    if (std::regex_match(name, m, re)) out.emplace_back(std::stoll(m[1]), e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

void save_checkpoint(const fs::path& dir, const torch::nn::Module& model, const torch::nn::Module* ema,
                     const Optimizer& opt, const TrainState& s, int64_t keep) {
  std::vector<NamedTensor> tensors = state_dict(model, "model.");
  if (ema)
    for (auto& t : state_dict(*ema, "ema.")) tensors.push_back(std::move(t));
  for (auto& t : opt.state()) tensors.push_back(std::move(t));
  tensors.push_back({"rng.cpu", at::detail::getDefaultCPUGenerator().get_state()});
  if (torch::cuda::is_available())
    tensors.push_back({"rng.cuda", at::globalContext().defaultGenerator(torch::Device(torch::kCUDA)).get_state()});
  json meta = {{"step", s.step},     {"epoch", s.epoch}, {"batch", s.batch},
               {"wall_s", s.wall_s}, {"metrics_lines", s.metrics_lines}, {"extra", s.extra}};
  const fs::path path = RunFolder{dir}.checkpoints() / fmt::format("step_{:09d}.safetensors", s.step);
  write_safetensors(path, tensors, {{"train_state", meta.dump()}, {"format", "dyt-checkpoint-1"}});
  auto all = list_checkpoints(dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove(all[i].second);
}

bool load_latest_checkpoint(const fs::path& dir, torch::nn::Module& model, torch::nn::Module* ema, Optimizer& opt,
                            TrainState& s, std::string* loaded_from) {
  auto all = list_checkpoints(dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    SafeTensorsFile f;
    try {
      f = read_safetensors(it->second);
    } catch (const IoError& e) {
      std::fprintf(stderr, "warning: skipping unreadable checkpoint %s (%s)\n", it->second.c_str(), e.what());
      continue;
    }
    load_state_dict(model, f, "model.", true);
    if (ema) load_state_dict(*ema, f, "ema.", true);
    opt.load_state(f);
    auto restore = [](at::Generator g, const Tensor& state) {  // a handle: shares the default generator
      std::lock_guard<std::mutex> lock(g.mutex());
      g.set_state(state);
    };
    if (const Tensor* r = f.find("rng.cpu")) restore(at::detail::getDefaultCPUGenerator(), *r);
    if (const Tensor* r = f.find("rng.cuda"); r && torch::cuda::is_available())
      restore(at::globalContext().defaultGenerator(torch::Device(torch::kCUDA)), *r);
    json meta = json::parse(f.metadata.at("train_state"));
    s.step = meta.at("step"), s.epoch = meta.at("epoch"), s.batch = meta.at("batch"), s.wall_s = meta.at("wall_s");
    s.extra = meta.at("extra");
    s.metrics_lines = meta.at("metrics_lines");
    if (loaded_from) *loaded_from = it->second.string();
    return true;
  }
  return false;
}

MetricsLog::MetricsLog(fs::path path) : path_(std::move(path)) {}
MetricsLog::~MetricsLog() = default;

void MetricsLog::attach_tensorboard(std::unique_ptr<EventWriter> tb, int64_t replay_from) {
  tb_ = std::move(tb);
  if (replay_from >= 0 && fs::exists(path_))
    for (const auto& j : read_jsonl(path_))
      if (j.contains("step") && j["step"].get<int64_t>() >= replay_from) mirror(j);
}

void MetricsLog::write(const json& j, bool sync) {
  append_jsonl(path_, j, sync);
  ++lines_;
  mirror(j);
}

void MetricsLog::mirror(const json& j) {
  if (!tb_ || !j.contains("step")) return;
  const int64_t step = j["step"].get<int64_t>();
  const std::string split = j.value("split", "train");
  if (split == "norms" && j.contains("layers")) {
    for (const auto& l : j["layers"])
      for (const char* k : {"alpha", "input_std"})
        if (l.contains(k) && l[k].is_number()) tb_->scalar(std::string(k) + "/" + l["name"].get<std::string>(), l[k].get<double>(), step);
  } else {
    for (const auto& [k, v] : j.items())
      if (v.is_number() && k != "step" && k != "epoch") tb_->scalar(split + "/" + k, v.get<double>(), step);
  }
  tb_->flush();
}

void MetricsLog::keep_first(int64_t lines) {
  lines_ = 0;
  if (lines <= 0) {
    std::error_code ec;
    fs::remove(path_, ec);
    return;
  }
  std::string kept;
  for (const auto& j : read_jsonl(path_)) {
    if (lines_ == lines) break;
    kept += j.dump() + "\n";
    ++lines_;
  }
  atomic_write(path_, kept);
}

// ---- progress ---------------------------------------------------------------------------------------------
std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

Progress::Progress(std::string label, int64_t total_steps, int64_t start_step)
    : label_(std::move(label)), total_(total_steps), start_(start_step), tty_(::isatty(STDERR_FILENO) != 0),
      t0_(std::chrono::steady_clock::now()), last_(t0_), last_file_(t0_) {}

Progress::~Progress() {
  if (log_) std::fclose(log_);
}

void Progress::tee(const fs::path& path) {
  if (log_) std::fclose(log_);
  log_ = std::fopen(path.c_str(), "a");  // best effort: a log that cannot be written is no reason to stop
}

void Progress::to_log(const std::string& text) {
  if (!log_) return;
  std::time_t t = std::time(nullptr);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  std::fprintf(log_, "%s %s\n", ts, text.c_str());
  std::fflush(log_);
}

void Progress::update(int64_t step, const std::string& fields) {
  auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  const bool final_step = step >= total_;
  const bool to_file = log_ && (final_step || std::chrono::duration<double>(now - last_file_).count() >= 30.0);
  if (since < (tty_ ? 0.25 : 30.0) && !final_step && !to_file) return;
  if (to_file) last_file_ = now;
  if (since < (tty_ ? 0.25 : 30.0) && !final_step) {  // the file's turn only
    const double elapsed = std::chrono::duration<double>(now - t0_).count();
    const double rate = (step - start_) / std::max(1e-9, elapsed);
    to_log(fmt::format("{} step {}/{} {} | ETA {}", label_, step, total_, fields,
                       format_duration(rate > 0 ? (total_ - step) / rate : NAN)));
    return;
  }
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - t0_).count();
  const double rate = (step - start_) / std::max(1e-9, elapsed);
  const double eta = rate > 0 ? (total_ - step) / rate : NAN;
  std::string text = fmt::format("{} step {}/{} {:.0f}% {} | ETA {}", label_, step, total_,
                                 100.0 * step / std::max<int64_t>(1, total_), fields, format_duration(eta));
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    dirty_ = true;
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  std::fflush(stderr);
  if (to_file) to_log(text);
}

void Progress::line(const std::string& text) {
  if (tty_ && dirty_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s %s\n", label_.c_str(), text.c_str());
  std::fflush(stderr);
  dirty_ = false;
  to_log(label_ + " " + text);
}

void Progress::finish() {
  if (tty_ && dirty_) std::fprintf(stderr, "\n");
  dirty_ = false;
}

}  // namespace dyt
