#include "runner/trainer.h"

#include "runner/analysis.h"

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
  if (!init.from_stage.empty() || !init.checkpoint.empty()) {
    fs::path file = init.checkpoint;
    if (!init.from_stage.empty()) {
      const auto& stages = ctx.spec.stages;
      if (std::find(stages.begin(), stages.end(), init.from_stage) == stages.end()) {
        report = {{"from_stage", init.from_stage}, {"skipped", "this variant does not run that stage: trained from scratch"}};
      } else {
        file = ctx.spec.dir.parent_path() / init.from_stage / "model.safetensors";
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

void save_final_weights(const fs::path& dir, const torch::nn::Module& model, const torch::nn::Module* ema) {
  write_safetensors(dir / "model.safetensors", state_dict(model), {{"format", "pt"}});
  if (ema) write_safetensors(dir / "model_ema.safetensors", state_dict(*ema), {{"format", "pt"}});
}

RunResult run_training_loop(RunContext& ctx, const ExperimentConfig& cfg, LoopModels m, const LoopHooks& hooks,
                            json summary) {
  const RunSpec& spec = ctx.spec;
  const int64_t spe = hooks.steps_per_epoch;
  const int64_t sched_steps = schedule_steps(cfg.schedule, spe);
  const int64_t total_steps = cfg.train.max_steps > 0 ? std::min(cfg.train.max_steps, sched_steps) : sched_steps;
  const int64_t epochs = (sched_steps + spe - 1) / spe;
  const double peak_lr = effective_lr(cfg, ctx.world);
  std::vector<Tensor> params;
  for (const auto& g : m.opt.groups()) params.insert(params.end(), g.params.begin(), g.params.end());
  const std::string best_key = "best_" + hooks.primary_metric;

  MetricsLog metrics(spec.dir / "metrics.jsonl");
  TrainState st;
  st.extra = json{{best_key, nullptr}};
  std::string resumed_from;
  // A run that never checkpointed starts over; a resumed one keeps the metrics its checkpoint covers.
  const bool resumed = load_latest_checkpoint(spec.dir, m.model, m.ema, m.opt, st, &resumed_from);
  metrics.keep_first(resumed ? st.metrics_lines : 0);
  Progress progress(ctx.label, total_steps, st.step);
  if (resumed)
    progress.line(fmt::format("resuming at step {} (epoch {}, batch {}) from {}", st.step, st.epoch, st.batch,
                              fs::path(resumed_from).filename().string()));
  else
    progress.line(fmt::format("{} parameters, {} steps ({} epochs x {}), peak lr {:.3g}", summary.value("params", int64_t{0}),
                              total_steps, epochs, spe, peak_lr));

  const auto t_start = std::chrono::steady_clock::now();
  auto wall = [&] { return st.wall_s + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count(); };
  auto checkpoint = [&](TrainState s) {
    s.wall_s = wall(), s.metrics_lines = metrics.lines();
    save_checkpoint(spec.dir, m.model, m.ema, m.opt, s, cfg.train.keep_checkpoints);
  };
  json last_eval;
  std::string status = "finished";
  json diverged;
  double loss_acc = 0, samples_acc = 0;
  int64_t loss_n = 0;
  json extra_acc = json::object();
  auto t_log = std::chrono::steady_clock::now();
  bool stop = false;

  auto do_eval = [&](int64_t epoch) {
    if (!hooks.evaluate) return;
    const auto t0 = std::chrono::steady_clock::now();
    json j = hooks.evaluate(epoch);
    j["split"] = "val", j["step"] = st.step, j["epoch"] = epoch;
    metrics.write(j, true);
    if (j.contains(hooks.primary_metric)) {
      const double v = j[hooks.primary_metric].get<double>();
      const json& best = st.extra[best_key];
      if (best.is_null() || (hooks.higher_is_better ? v > best.get<double>() : v < best.get<double>())) st.extra[best_key] = v;
    }
    last_eval = j;
    std::string text = fmt::format("epoch {} val:", epoch + 1);
    for (const auto& [k, v] : j.items())
      if (v.is_number_float()) text += fmt::format(" {} {:.4g}", k, v.get<double>());
    progress.line(text);
    t_log += std::chrono::steady_clock::now() - t0;  // img/s counts training time only
  };

  m.model.train();
  for (; st.epoch < epochs && !stop && status == "finished"; ++st.epoch, st.batch = 0) {
    hooks.start_epoch(st.epoch, st.batch);
    while (st.step < total_steps) {
      const double lr = scheduled_lr(cfg.schedule, peak_lr, static_cast<double>(st.step) / spe, static_cast<double>(spe));
      StepResult r;
      int64_t index = 0;
      // Every track_norms_every steps: each norm layer's input std (and alpha) on this batch.
      const bool track = cfg.train.track_norms_every > 0 && st.step % cfg.train.track_norms_every == 0;
      std::vector<std::pair<std::string, NormLayer>> norms;
      std::map<std::string, double> input_std;
      if (track) {
        norms = norm_layers(m.model);
        for (auto& [name, layer] : norms)
          layer->observe = [&input_std, name = name](const Tensor& x) { input_std[name] = x.detach().to(torch::kFloat).std().item<double>(); };
      }
      const bool got = hooks.next_step(st.step, r, index);
      for (auto& [name, layer] : norms) layer->observe = nullptr;
      if (!got) break;
      if (track) {
        json layers = json::array();
        for (auto& [name, layer] : norms) {
          json l = {{"name", name}, {"input_std", input_std.count(name) ? input_std[name] : std::nan("")}};
          const double a = layer->alpha_value();
          if (!std::isnan(a)) l["alpha"] = a;
          layers.push_back(l);
        }
        metrics.write({{"split", "norms"}, {"step", st.step}, {"epoch", st.epoch}, {"layers", layers}});
      }
      const double loss_v = r.loss.item<double>();
      if (!std::isfinite(loss_v)) {
        diverged = {{"step", st.step}, {"reason", fmt::format("loss is {}", loss_v)}};
        status = "diverged";
        break;
      }
      r.loss.backward();
      const double gnorm = grad_norm_and_clip(params, cfg.optim.clip_grad);
      if (!std::isfinite(gnorm) || gnorm > cfg.train.max_grad_norm_diverged) {
        diverged = {{"step", st.step}, {"reason", fmt::format("gradient norm {:.3g}", gnorm)}};
        status = "diverged";
        break;
      }
      m.opt.step(lr);
      m.opt.zero_grad();
      if (m.ema) update_ema(*m.ema, m.model, cfg.train.ema_decay);
      ++st.step;
      st.batch = index + 1;
      if (hooks.after_step) hooks.after_step(st.step);
      loss_acc += loss_v, samples_acc += static_cast<double>(r.samples), ++loss_n;
      for (const auto& [k, v] : r.extra.items()) extra_acc[k] = extra_acc.value(k, 0.0) + v.get<double>();
      if (st.step % cfg.train.log_every == 0 || st.step == total_steps) {
        auto now = std::chrono::steady_clock::now();
        const double rate = samples_acc * ctx.world / std::max(std::chrono::duration<double>(now - t_log).count(), 1e-9);
        json line = {{"split", "train"}, {"step", st.step}, {"epoch", st.epoch}, {"loss", loss_acc / loss_n},
                     {"lr", lr}, {"grad_norm", gnorm}, {"samples_per_s", rate}};
        for (const auto& [k, v] : extra_acc.items()) line[k] = v.get<double>() / loss_n;
        metrics.write(line);
        progress.update(st.step, fmt::format("epoch {}/{} loss {:.4f} lr {:.2e} {:.0f}/s", st.epoch + 1, epochs,
                                             loss_acc / loss_n, lr, rate));
        loss_acc = samples_acc = 0, loss_n = 0, extra_acc = json::object(), t_log = now;
      }
      if (cfg.train.checkpoint_every > 0 && st.step % cfg.train.checkpoint_every == 0) checkpoint(st);
      if (ctx.stop && ctx.stop->load()) {
        stop = true;
        break;
      }
    }
    if (status != "finished" || stop) break;
    const bool last = st.epoch + 1 == epochs || st.step >= total_steps;
    if ((st.epoch + 1) % cfg.train.eval_every == 0 || last) do_eval(st.epoch);
    if (last) {
      ++st.epoch, st.batch = 0;
      break;
    }
    TrainState next = st;  // the checkpoint records the next epoch's start
    next.epoch += 1, next.batch = 0;
    checkpoint(next);
  }
  progress.finish();

  summary["steps"] = st.step;
  summary["epochs"] = epochs;
  summary["wall_s"] = wall();
  summary["device"] = ctx.device.str();
  if (stop) {
    checkpoint(st);
    summary["status"] = "interrupted";
    return {"interrupted", summary};
  }
  if (status == "diverged") {
    summary["status"] = "diverged";
    summary["diverged_step"] = diverged["step"];
    summary["diverged_reason"] = diverged["reason"];
    if (!last_eval.is_null()) summary["last_good"] = last_eval;
    progress.line(fmt::format("diverged at step {}: {}", diverged["step"].get<int64_t>(), diverged["reason"].get<std::string>()));
    return {"diverged", summary};
  }
  summary["status"] = "finished";
  for (const auto& [k, v] : last_eval.items())
    if (k != "split" && k != "step" && k != "epoch") summary[k == "loss" ? "val_loss" : k] = v;
  summary[best_key] = st.extra[best_key];
  // Fig. 8: how well the final alphas follow 1 / std of their inputs across layers.
  json last_norms;
  for (const auto& j : read_jsonl(metrics.path()))
    if (j.value("split", "") == "norms") last_norms = j;
  if (!last_norms.is_null()) {
    const double r = alpha_invstd_correlation(last_norms);
    if (!std::isnan(r)) summary["alpha_invstd_corr"] = r;
  }
  if (hooks.save_final) hooks.save_final(summary);
  else save_final_weights(spec.dir, m.model, m.ema);
  return {"finished", summary};
}

}  // namespace dyt
