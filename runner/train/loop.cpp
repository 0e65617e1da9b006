// The training loop and its standard hooks (runner/train/loop.h).
#include "runner/train/loop.h"

#include "core/distributed.h"
#include "datasets/prefetch.h"
#include "runner/run/run_folder.h"
#include "runner/train/norm_probes.h"

#include <fmt/format.h>

#include <chrono>
#include <map>
#include <cmath>

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;
using torch::Tensor;

json initialise_from(const RunContext& ctx, torch::nn::Module& model) {
  const InitOptions& init = ctx.spec.config.init;
  json report;
  // In a data-parallel job rank 0 alone reads the file: the others receive its weights when the
  // loop starts (so other nodes need no copy of it).
  if ((!init.from_stage.empty() || !init.checkpoint.empty()) && ctx.rank == 0) {
    fs::path file = init.checkpoint;
    if (!init.from_stage.empty()) {
      const auto& stages = ctx.spec.stages;
      if (std::find(stages.begin(), stages.end(), init.from_stage) == stages.end()) {
        report = {{"from_stage", init.from_stage}, {"skipped", "this variant does not run that stage: trained from scratch"}};
      } else {
        file = RunFolder{ctx.spec.dir}.stage(init.from_stage).weights();
        if (!fs::exists(file))
          throw IoError(fmt::format("{}: stage '{}' has no final weights; run it first (dyt run runs stages in order)",
                                    file.string(), init.from_stage));
      }
    } else if (!fs::exists(file)) {
      throw IoError(fmt::format("{}: init.checkpoint not found", file.string()));
    }
    if (report.is_null()) {
      SafeTensorsFile f = read_safetensors(file);
      torch::NoGradGuard ng;
      std::vector<std::string> loaded, missing, mismatched;
      auto excluded = [&](const std::string& name) {
        for (const auto& p : init.exclude)
          if (name.rfind(p, 0) == 0) return true;
        return false;
      };
      auto visit = [&](const std::string& name, torch::Tensor t) {
        if (excluded(name)) return;
        const torch::Tensor* src = f.find(name);
        if (!src) return missing.push_back(name);
        if (src->sizes() != t.sizes()) return mismatched.push_back(name);
        t.copy_(*src);
        loaded.push_back(name);
      };
      for (const auto& item : model.named_parameters(true)) visit(item.key(), item.value());
      for (const auto& item : model.named_buffers(true)) visit(item.key(), item.value());
      if (loaded.empty())
        throw IoError(fmt::format("{}: no tensor matches the model's parameter names (e.g. '{}')", file.string(),
                                  model.named_parameters().keys().front()));
      report = {{"from", file.string()}, {"loaded", loaded.size()}, {"not_in_checkpoint", missing}, {"shape_mismatch", mismatched}};
    }
  }
  if (init.head_init_std > 0) {
    torch::NoGradGuard ng;
    auto params = model.named_parameters(true);
    if (params.contains("head.weight")) trunc_normal_(params["head.weight"], init.head_init_std);
    if (params.contains("head.bias")) params["head.bias"].zero_();
  }
  if (init.freeze_backbone) {
    for (auto& item : model.named_parameters(true))
      if (item.key().rfind("head.", 0) != 0) item.value().requires_grad_(false);
    if (report.is_null()) report = json::object();
    report["frozen"] = "all but head.*";
  }
  return report;
}

void save_final_weights(const fs::path& dir, const torch::nn::Module& model, const torch::nn::Module* ema,
                        const nlohmann::json& config) {
  write_safetensors(RunFolder{dir}.weights(), state_dict(model), {{"format", "pt"}});
  if (ema) write_safetensors(RunFolder{dir}.ema_weights(), state_dict(*ema), {{"format", "pt"}});
  if (!config.is_null()) atomic_write(RunFolder{dir}.model_config(), config.dump(2) + "\n");
}

namespace {

// ---- the standard hooks --------------------------------------------------------------------------

// EMA of the weights after every update (train.ema; the task keeps the copy).
class EmaHook : public TrainHook {
 public:
  EmaHook(torch::nn::Module& ema, const torch::nn::Module& model, double decay) : ema_(ema), model_(model), decay_(decay) {}
  void after_update(LoopState&) override { update_ema(ema_, model_, decay_); }

 private:
  torch::nn::Module& ema_;
  const torch::nn::Module& model_;
  double decay_;
};

// A NaN/Inf loss, or a gradient norm that is not finite or above train.max_grad_norm_diverged,
// ends the run as "diverged" before the update is applied. Both are judged on the update's
// numbers after after_backward (over all ranks in a data-parallel job), so every rank decides
// the same.
class DivergenceGuard : public TrainHook {
 public:
  explicit DivergenceGuard(double max_grad_norm) : max_(max_grad_norm) {}
  void before_update(LoopState& s) override {
    if (!std::isfinite(s.loss)) diverge(s, fmt::format("loss is {}", s.loss));
    else if (s.overflow) return;  // fp16 overflow: the loss scaler skips this update and lowers the scale
    else if (!std::isfinite(s.grad_norm) || s.grad_norm > max_) diverge(s, fmt::format("gradient norm {:.3g}", s.grad_norm));
  }

 private:
  static void diverge(LoopState& s, const std::string& reason) {
    s.diverged = {{"step", s.train.step}, {"reason", reason}};
    s.status = "diverged";
  }
  double max_;
};

// Fig. 8: every train.track_norms_every steps, each norm layer's input std (and its alpha) on the
// batch, as a {"split": "norms"} line.
class NormProbe : public TrainHook {
 public:
  NormProbe(torch::nn::Module& model, int64_t every, MetricsLog& metrics) : model_(model), every_(every), metrics_(metrics) {}
  void before_step(LoopState& s) override {
    active_ = every_ > 0 && s.train.step % every_ == 0;
    if (!active_) return;
    norms_ = norm_layers(model_);
    input_std_.clear();
    for (auto& [name, layer] : norms_)
      layer->observe = [this, name = name](const Tensor& x) { input_std_[name] = x.detach().to(torch::kFloat).std().item<double>(); };
  }
  void after_loss(LoopState& s) override {
    if (!active_) return;
    for (auto& [name, layer] : norms_) layer->observe = nullptr;
    if (s.got_batch) {
      json layers = json::array();
      for (auto& [name, layer] : norms_) {
        json l = {{"name", name}, {"input_std", input_std_.count(name) ? input_std_[name] : std::nan("")}};
        const double a = layer->alpha_value();
        if (!std::isnan(a)) l["alpha"] = a;
        layers.push_back(l);
      }
      metrics_.write({{"split", "norms"}, {"step", s.train.step}, {"epoch", s.train.epoch}, {"layers", layers}});
    }
    norms_.clear();
    active_ = false;
  }

 private:
  torch::nn::Module& model_;
  int64_t every_;
  MetricsLog& metrics_;
  bool active_ = false;
  std::vector<std::pair<std::string, NormLayer>> norms_;
  std::map<std::string, double> input_std_;
};

// Training lines every train.log_every steps (mean loss, lr, grad norm, samples/s, the task's
// extra numbers: all of the whole update over all ranks), the live progress line, and the
// evaluation lines with best_<metric>.
class MetricsWriter : public TrainHook {
 public:
  MetricsWriter(MetricsLog& metrics, Progress& progress, int64_t log_every, MetricInfo primary)
      : metrics_(metrics), progress_(progress), every_(log_every), primary_(std::move(primary)) {}
  void before_train(LoopState&) override { t_log_ = std::chrono::steady_clock::now(); }
  void after_step(LoopState& s) override {
    loss_acc_ += s.loss, samples_acc_ += static_cast<double>(s.result.samples), ++n_;
    for (const auto& [k, v] : s.result.extra.items()) extra_acc_[k] = extra_acc_.value(k, 0.0) + v.get<double>();
    if (s.train.step % every_ != 0 && s.train.step != s.total_steps) return;
    auto now = std::chrono::steady_clock::now();
    const double rate = samples_acc_ / std::max(std::chrono::duration<double>(now - t_log_).count(), 1e-9);
    json line = {{"split", "train"}, {"step", s.train.step}, {"epoch", s.train.epoch}, {"loss", loss_acc_ / n_},
                 {"lr", s.lr}, {"grad_norm", s.grad_norm}, {"samples_per_s", rate}};
    for (const auto& [k, v] : extra_acc_.items()) line[k] = v.get<double>() / n_;
    metrics_.write(line);
    progress_.update(s.train.step, fmt::format("epoch {}/{} loss {:.4f} lr {:.2e} {:.0f}/s", s.train.epoch + 1, s.epochs,
                                               loss_acc_ / n_, s.lr, rate));
    loss_acc_ = samples_acc_ = 0, n_ = 0, extra_acc_ = json::object(), t_log_ = now;
  }
  void after_epoch(LoopState& s) override {
    if (s.eval.is_null()) return;  // not an evaluation epoch
    const auto t0 = std::chrono::steady_clock::now();
    json& j = s.eval;
    j["split"] = "val", j["step"] = s.train.step, j["epoch"] = s.train.epoch;
    metrics_.write(j, true);
    // best_<metric> over the evaluations, and best_ema_<metric> when the EMA weights are evaluated
    // too (the ViT scripts' "max accuracy" and "max EMA accuracy").
    for (const std::string& key : {primary_.name, "ema_" + primary_.name}) {
      if (!j.contains(key) || !j[key].is_number()) continue;
      const double v = j[key].get<double>();
      const std::string best_key = "best_" + key;
      const json& best = s.train.extra.contains(best_key) ? s.train.extra[best_key] : json();
      if (best.is_null() || (primary_.higher_is_better ? v > best.get<double>() : v < best.get<double>()))
        s.train.extra[best_key] = v;
    }
    std::string text = fmt::format("epoch {} val:", s.train.epoch + 1);
    for (const auto& [k, v] : j.items())
      if (v.is_number_float()) text += fmt::format(" {} {:.4g}", k, v.get<double>());
    progress_.line(text);
    t_log_ += std::chrono::steady_clock::now() - t0;  // samples/s counts training time only
  }

 private:
  MetricsLog& metrics_;
  Progress& progress_;
  int64_t every_;
  MetricInfo primary_;
  double loss_acc_ = 0, samples_acc_ = 0;
  int64_t n_ = 0;
  json extra_acc_ = json::object();
  std::chrono::steady_clock::time_point t_log_;
};

// Checkpoints every train.checkpoint_every steps, at the end of each epoch but the last (recording
// the next epoch's start), and when the run is stopped.
class Checkpointer : public TrainHook {
 public:
  Checkpointer(std::function<void(TrainState)> save, int64_t every) : save_(std::move(save)), every_(every) {}
  void after_step(LoopState& s) override {
    if (every_ > 0 && s.train.step % every_ == 0) save_(s.train);
  }
  void after_epoch(LoopState& s) override {
    const bool last = s.train.epoch + 1 == s.epochs || s.train.step >= s.total_steps;
    if (last) return;
    TrainState next = s.train;
    next.epoch += 1, next.batch = 0;
    save_(next);
  }
  void after_train(LoopState& s) override {
    if (s.stop) save_(s.train);
  }

 private:
  std::function<void(TrainState)> save_;
  int64_t every_;
};

// SIGINT / SIGTERM: stop after the current update (the checkpointer saves it).
class StopSignal : public TrainHook {
 public:
  explicit StopSignal(const std::atomic<bool>* flag) : flag_(flag) {}
  void after_step(LoopState& s) override {
    if (flag_ && flag_->load()) s.stop = true;
  }

 private:
  const std::atomic<bool>* flag_;
};

// Data parallelism (PyTorch DDP's semantics): the reducer is armed before the backward of an
// update's last micro-batch (the others accumulate locally, as no_sync()), so that backward
// returns with the gradients averaged over the ranks. Then the update's loss, sample count and
// extra numbers are summed over the ranks (the logged loss is the mean over the global batch),
// together with whether any rank was asked to stop, so that every rank stops at the same update.
class DataParallel : public TrainHook {
 public:
  DataParallel(Distributed& dist, GradientReducer& reducer, const std::atomic<bool>* stop, uint64_t seed)
      : dist_(dist), reducer_(reducer), stop_(stop), seed_(seed) {}
  // Dropout and drop-path draw from each rank's own generator (as timm seeds seed + rank). Rank 0's
  // is the run's own stream (checkpointed); the others are reseeded from (seed, rank, update) before
  // every update, so that a resumed job draws exactly what the uninterrupted one would have.
  void before_step(LoopState& s) override {
    if (dist_.rank() > 0)
      torch::manual_seed(mix_seed(mix_seed(seed_, static_cast<uint64_t>(dist_.rank())), static_cast<uint64_t>(s.train.step)));
  }
  void before_backward(LoopState& s) override {
    if (s.micro + 1 == s.accum) reducer_.prepare_for_backward();
  }
  void after_backward(LoopState& s) override {
    std::vector<double> v = {s.loss, static_cast<double>(s.result.samples), stop_ && stop_->load() ? 1.0 : 0.0};
    for (const auto& [k, x] : s.result.extra.items()) v.push_back(x.get<double>());  // same keys, same order
    v = dist_.sum(v);
    const double world = static_cast<double>(dist_.world());
    s.loss = v[0] / world;
    s.result.samples = static_cast<int64_t>(v[1]);
    stop_any_ = v[2] > 0;
    size_t i = 3;
    for (auto& [k, x] : s.result.extra.items()) x = v[i++] / world;
  }
  void after_step(LoopState& s) override {
    if (stop_any_) s.stop = true;
  }

 private:
  Distributed& dist_;
  GradientReducer& reducer_;
  const std::atomic<bool>* stop_;
  uint64_t seed_;
  bool stop_any_ = false;
};

// Rank 0's training state on every rank: counters (broadcast as JSON through the store), then the
// weights, buffers, EMA and optimizer moments (one broadcast per dtype), after checking that
// every rank built the same parameters.
void receive_state_from_rank0(Distributed& dist, torch::nn::Module& model, torch::nn::Module* ema, Optimizer& opt,
                              TrainState& t, bool& resumed, std::string& resumed_from) {
  json st;
  if (dist.rank() == 0)
    st = {{"resumed", resumed}, {"from", resumed_from}, {"step", t.step}, {"epoch", t.epoch}, {"batch", t.batch},
          {"wall_s", t.wall_s}, {"metrics_lines", t.metrics_lines}, {"extra", t.extra}, {"opt_steps", opt.steps()}};
  st = json::parse(dist.broadcast_text(st.dump()));
  resumed = st.at("resumed"), resumed_from = st.at("from");
  t.step = st.at("step"), t.epoch = st.at("epoch"), t.batch = st.at("batch"), t.wall_s = st.at("wall_s");
  t.metrics_lines = st.at("metrics_lines"), t.extra = st.at("extra");
  opt.set_steps(st.at("opt_steps"));
  std::vector<Tensor> params = model.parameters(true);
  dist.verify_same_parameters(params);
  std::vector<Tensor> all = params;
  for (const auto& b : model.buffers(true)) all.push_back(b);
  if (ema) {
    for (const auto& p : ema->parameters(true)) all.push_back(p);
    for (const auto& b : ema->buffers(true)) all.push_back(b);
  }
  for (const auto& m : opt.state_tensors()) all.push_back(m);
  dist.broadcast(all);
}

}  // namespace

json recipe_deviation(const ExperimentConfig& cfg, int64_t world) {
  const int64_t recipe = cfg.data.recipe_total_batch;
  if (recipe <= 0 || cfg.data.max_tokens > 0) return json();
  const int64_t total = total_batch(cfg, world);
  if (total == recipe) return json();
  const bool scaled = cfg.optim.lr <= 0;
  const double lr = effective_lr(cfg, world);
  const double recipe_lr = scaled ? cfg.optim.blr * static_cast<double>(recipe) / 256.0 : cfg.optim.lr;
  return {{"total_batch", total},
          {"recipe_total_batch", recipe},
          {"peak_lr", lr},
          {"recipe_peak_lr", recipe_lr},
          {"message", fmt::format("this run trains at total batch {}, not the recipe's {}: peak lr {:.3g} instead of "
                                  "{:.3g} ({}). Set data.total_batch_size: {} to train as the recipe.",
                                  total, recipe, lr, recipe_lr,
                                  scaled ? "scaled linearly by optim.blr x total / 256" : "optim.lr is absolute: not scaled",
                                  recipe)}};
}

RunResult run_training_loop(RunContext& ctx, Task& task, json summary, HookList extra) {
  const RunSpec& spec = ctx.spec;
  const ExperimentConfig& cfg = task.config();
  torch::nn::Module& model = task.model();
  torch::nn::Module* ema = task.ema();
  Optimizer& opt = task.optimizer();
  const std::vector<MetricInfo> metric_infos = task.metrics();
  const MetricInfo primary = metric_infos.empty() ? MetricInfo{"loss", "loss", false} : metric_infos.front();

  LoopState s;
  // An update takes `accum` micro-batches: an epoch has batches / accum updates (the rest of the
  // epoch's batches are not used), the schedule counts updates.
  const int64_t accum = accumulation_steps(cfg, ctx.world);
  s.steps_per_epoch = task.steps_per_epoch() / accum;
  if (s.steps_per_epoch <= 0)
    throw ConfigError(Origin{}, "train.accum_steps",
                      fmt::format("an epoch has {} batches, fewer than the {} micro-batches of one update; lower "
                                  "train.accum_steps (or data.total_batch_size)",
                                  task.steps_per_epoch(), accum));
  const int64_t spe = s.steps_per_epoch;
  const int64_t sched_steps = schedule_steps(cfg.schedule, spe);
  s.total_steps = cfg.train.max_steps > 0 ? std::min(cfg.train.max_steps, sched_steps) : sched_steps;
  s.epochs = (sched_steps + spe - 1) / spe;
  const double peak_lr = effective_lr(cfg, ctx.world);
  std::vector<Tensor> params;
  for (const auto& g : opt.groups()) params.insert(params.end(), g.params.begin(), g.params.end());
  const std::string best_key = "best_" + primary.name;

  MetricsLog metrics(RunFolder{spec.dir}.metrics());
  s.train.extra = json{{best_key, nullptr}};
  s.accum = accum;
  std::string resumed_from;
  // Only rank 0 touches the run folder (metrics, checkpoints, weights). A run that never
  // checkpointed starts over; a resumed one keeps the metrics its checkpoint covers.
  const bool writes = ctx.rank == 0;
  bool resumed = writes && load_latest_checkpoint(spec.dir, model, ema, opt, s.train, &resumed_from);
  std::unique_ptr<GradientReducer> reducer;
  if (ctx.dist) {
    receive_state_from_rank0(*ctx.dist, model, ema, opt, s.train, resumed, resumed_from);
    std::vector<Tensor> trainable;
    std::vector<std::string> names;
    for (const auto& item : model.named_parameters(true))
      if (item.value().requires_grad()) trainable.push_back(item.value()), names.push_back(item.key());
    reducer = std::make_unique<GradientReducer>(*ctx.dist, trainable, names, cfg.train.bucket_mb);
  }
  if (writes) metrics.keep_first(resumed ? s.train.metrics_lines : 0);
  // Precision: TF32 as the run asks; fp16's loss scale resumes with the run.
  const Precision precision = resolve_precision(cfg.train.precision, ctx.device);
  apply_matmul_precision(precision);
  LossScaler scaler(precision.loss_scaling);
  scaler.load(s.train.extra);
  int64_t skipped_updates = s.train.extra.value("skipped_updates", int64_t{0});
  Progress progress(ctx.label, s.total_steps, s.train.step);
  if (writes) {
    progress.tee(RunFolder{spec.dir}.log());
    // TensorBoard mirrors metrics.jsonl. A resumed run's writer purges every point at or after the
    // checkpoint's step (SessionLog START), then rewrites the kept lines of that step, so that the
    // curves are metrics.jsonl's exactly.
    if (cfg.train.tensorboard)
      metrics.attach_tensorboard(
          std::make_unique<EventWriter>(RunFolder{spec.dir}.tensorboard(), resumed ? s.train.step : -1),
          resumed ? s.train.step : -1);
  }
  if (!writes) {
  } else if (resumed)
    progress.line(fmt::format("resuming at step {} (epoch {}, batch {}) from {}", s.train.step, s.train.epoch,
                              s.train.batch, fs::path(resumed_from).filename().string()));
  else if (cfg.data.max_tokens > 0)
    progress.line(fmt::format("{} parameters, {} steps ({} epochs x {}), up to {} audio samples per update ({} x {} "
                              "process(es) x {} accumulated), peak lr {:.3g}, {}",
                              summary.value("params", int64_t{0}), s.total_steps, s.epochs, spe,
                              cfg.data.max_tokens * ctx.world * accum, cfg.data.max_tokens, ctx.world, accum, peak_lr,
                              precision.name + (precision.loss_scaling ? " with loss scaling" : "")));
  else
    progress.line(fmt::format("{} parameters, {} steps ({} epochs x {}), total batch {} ({} x {} process(es) x {} "
                              "accumulated), peak lr {:.3g}, {}",
                              summary.value("params", int64_t{0}), s.total_steps, s.epochs, spe, total_batch(cfg, ctx.world),
                              cfg.data.batch_size, ctx.world, accum, peak_lr,
                              precision.name + (precision.loss_scaling ? " with loss scaling" : "")));
  // 16-bit autocast on a CPU without fast 16-bit matrix products: say so before the first step.
  if (writes && precision.autocast && ctx.device.is_cpu()) {
    const std::string w = cpu_precision_warning(precision, cpu_matmul_slowdown(precision.dtype));
    if (!w.empty()) progress.line("WARNING: " + w);
  }
  // A run at another total batch than its recipe's says so, loudly, here and in summary.json.
  const json deviation = recipe_deviation(cfg, ctx.world);
  if (!deviation.is_null()) {
    summary["recipe_deviation"] = deviation;
    if (writes) progress.line("WARNING: " + deviation["message"].get<std::string>());
  }

  const auto t_start = std::chrono::steady_clock::now();
  const double wall_before = s.train.wall_s;
  s.wall = [&] { return wall_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count(); };
  auto save = [&](TrainState t) {
    t.wall_s = s.wall(), t.metrics_lines = metrics.lines();
    scaler.save(t.extra);
    if (scaler.enabled()) t.extra["skipped_updates"] = skipped_updates;
    save_checkpoint(spec.dir, model, ema, opt, t, cfg.train.keep_checkpoints);
  };

  // The standard hooks, in the order they run at each point, then the caller's.
  HookList hooks;
  if (ema) hooks.push_back(std::make_unique<EmaHook>(*ema, model, cfg.train.ema_decay));
  hooks.push_back(std::make_unique<DivergenceGuard>(cfg.train.max_grad_norm_diverged));
  if (writes) {
    hooks.push_back(std::make_unique<NormProbe>(model, cfg.train.track_norms_every, metrics));
    hooks.push_back(std::make_unique<MetricsWriter>(metrics, progress, cfg.train.log_every, primary));
    hooks.push_back(std::make_unique<Checkpointer>(save, cfg.train.checkpoint_every));
  }
  if (reducer)
    hooks.push_back(std::make_unique<DataParallel>(*ctx.dist, *reducer, ctx.stop, static_cast<uint64_t>(spec.seed)));
  else
    hooks.push_back(std::make_unique<StopSignal>(ctx.stop));
  for (auto& h : extra) hooks.push_back(std::move(h));
  auto call = [&](void (TrainHook::*point)(LoopState&)) {
    for (auto& h : hooks) ((*h).*point)(s);
  };
  auto running = [&] { return s.status == "finished" && !s.stop; };

  json last_eval;
  model.train();
  call(&TrainHook::before_train);
  for (; s.train.epoch < s.epochs && running(); ++s.train.epoch, s.train.batch = 0) {
    task.start_epoch(s.train.epoch, s.train.batch);
    while (s.train.step < s.total_steps && s.train.batch / accum < spe) {
      s.lr = scheduled_lr(cfg.schedule, peak_lr, static_cast<double>(s.train.step) / spe, static_cast<double>(spe));
      s.result = StepResult{};
      int64_t index = 0;
      call(&TrainHook::before_step);
      // The update's micro-batches: each loss (a mean over its batch) scaled by 1/accum, so the
      // gradients add up to those of the mean over the whole update's batch.
      double loss_sum = 0;
      int64_t samples = 0;
      json extra = json::object();
      for (int64_t micro = 0; micro < accum && running(); ++micro) {
        StepResult r;
        s.micro = micro;
        s.got_batch = task.next_loss(s.train.step * accum + micro, r, index);
        if (s.got_batch) s.loss = r.loss.item<double>();
        s.result = r;
        call(&TrainHook::after_loss);
        if (!s.got_batch || !running()) break;
        call(&TrainHook::before_backward);
        if (scaler.enabled())
          (r.loss * (scaler.scale() / static_cast<double>(accum))).backward();
        else
          (accum == 1 ? r.loss : r.loss / static_cast<double>(accum)).backward();
        loss_sum += s.loss, samples += r.samples;
        for (const auto& [k, v] : r.extra.items()) extra[k] = extra.value(k, 0.0) + v.get<double>() / accum;
      }
      if (!s.got_batch || !running()) break;
      s.loss = accum == 1 ? loss_sum : loss_sum / static_cast<double>(accum);
      s.result.samples = samples;
      s.result.extra = accum == 1 ? s.result.extra : extra;
      call(&TrainHook::after_backward);
      s.overflow = scaler.unscale(params);  // (gradients are the same on every rank: all decide alike)
      scaler.update(s.overflow);
      s.grad_norm = s.overflow ? NAN : grad_norm_and_clip(params, cfg.optim.clip_grad);
      call(&TrainHook::before_update);
      if (!running()) break;
      if (s.overflow)
        ++skipped_updates;
      else
        opt.step(s.lr);
      opt.zero_grad();
      call(&TrainHook::after_update);
      ++s.train.step;
      s.train.batch = index + 1;
      task.after_step(s.train.step);
      call(&TrainHook::after_step);
      if (!running()) break;
    }
    if (!running()) break;
    const bool last = s.train.epoch + 1 == s.epochs || s.train.step >= s.total_steps;
    const bool evaluated = (s.train.epoch + 1) % cfg.train.eval_every == 0 || last;
    s.eval = evaluated ? task.evaluate(s.train.epoch) : json();
    call(&TrainHook::after_epoch);
    if (evaluated) last_eval = s.eval;
    if (last) {
      ++s.train.epoch, s.train.batch = 0;
      break;
    }
  }
  progress.finish();
  call(&TrainHook::after_train);

  summary["steps"] = s.train.step;
  summary["epochs"] = s.epochs;
  summary["wall_s"] = s.wall();
  summary["device"] = ctx.device.str();
  summary["precision"] = precision.name;
  if (scaler.enabled()) summary["skipped_updates"] = skipped_updates, summary["loss_scale"] = scaler.scale();
  summary["metrics"] = to_json(metric_infos);
  if (s.stop) {
    summary["status"] = "interrupted";
    return {"interrupted", summary};
  }
  if (s.status == "diverged") {
    summary["status"] = "diverged";
    summary["diverged_step"] = s.diverged["step"];
    summary["diverged_reason"] = s.diverged["reason"];
    if (!last_eval.is_null()) summary["last_good"] = last_eval;
    if (writes)
      progress.line(fmt::format("diverged at step {}: {}", s.diverged["step"].get<int64_t>(), s.diverged["reason"].get<std::string>()));
    return {"diverged", summary};
  }
  summary["status"] = "finished";
  for (const auto& [k, v] : last_eval.items())
    if (k != "split" && k != "step" && k != "epoch") summary[k == "loss" ? "val_loss" : k] = v;
  summary[best_key] = s.train.extra[best_key];
  if (s.train.extra.contains("best_ema_" + primary.name)) summary["best_ema_" + primary.name] = s.train.extra["best_ema_" + primary.name];
  // The test split, measured once with the final weights (every rank: the sums are all-reduced).
  json test = task.test();
  if (!test.is_null()) {
    for (const auto& [k, v] : test.items()) summary[k == "loss" ? "test_loss" : "test_" + k] = v;
    if (writes) {
      test["split"] = "test", test["step"] = s.train.step, test["epoch"] = s.epochs - 1;
      metrics.write(test, true);
      std::string text = "test (measured once, final weights):";
      for (const auto& [k, v] : test.items())
        if (v.is_number_float()) text += fmt::format(" {} {:.4g}", k, v.get<double>());
      progress.line(text);
    }
  }
  if (!writes) return {"finished", summary};
  // Fig. 8: how well the final alphas follow 1 / std of their inputs across layers.
  json last_norms;
  for (const auto& j : read_jsonl(metrics.path()))
    if (j.value("split", "") == "norms") last_norms = j;
  if (!last_norms.is_null()) {
    const double r = alpha_invstd_correlation(last_norms);
    if (!std::isnan(r)) summary["alpha_invstd_corr"] = r;
  }
  task.finalize(summary);
  return {"finished", summary};
}

}  // namespace dyt
