// Task `classification`: supervised image classification (the paper's Table 1 protocol at any
// scale): AdamW + warm-up/cosine, label smoothing, mixup/cutmix, EMA, evaluation every
// eval_every epochs (top-1, top-5, loss), checkpoints and resume, divergence detection.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <random>

#include "datasets/loader.h"
#include "models/vit.h"
#include "runner/task.h"
#include "runner/train.h"

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;
using torch::Tensor;

namespace {

struct EvalResult {
  double top1 = 0, top5 = 0, loss = 0;
  int64_t n = 0;
};

EvalResult evaluate(Classifier& model, Loader& loader, const torch::Device& device, bool bf16) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  AutocastGuard ac(bf16, device.type());
  loader.start_epoch(0);
  Batch b;
  double correct1 = 0, correct5 = 0, loss_sum = 0;
  int64_t n = 0;
  while (loader.next(b)) {
    Tensor x = b.images.to(device, /*non_blocking=*/true);
    Tensor y = b.labels.to(device, true);
    Tensor logits = model.forward(x).to(torch::kFloat);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    const int64_t k = std::min<int64_t>(5, logits.size(1));
    Tensor topk = std::get<1>(logits.topk(k, 1));
    Tensor hit = topk.eq(y.unsqueeze(1));
    correct1 += hit.select(1, 0).sum().item<double>();
    correct5 += hit.any(1).sum().item<double>();
    n += y.size(0);
  }
  model.train(was_training);
  return {100.0 * correct1 / std::max<int64_t>(1, n), 100.0 * correct5 / std::max<int64_t>(1, n),
          loss_sum / std::max<int64_t>(1, n), n};
}

// timm Mixup in 'batch' mode: one lambda per batch, mixing with the flipped batch; targets are
// label-smoothed one-hot vectors mixed with the same lambda.
struct Mixer {
  const AugmentOptions& o;
  int64_t classes;
  double smoothing;

  bool active() const { return o.mixup > 0 || o.cutmix > 0; }

  static double beta(std::mt19937_64& rng, double a) {
    std::gamma_distribution<double> g(a, 1.0);
    double x = g(rng), y = g(rng);
    return x / (x + y);
  }

  Tensor smooth_one_hot(const Tensor& y) const {
    const double off = smoothing / classes, on = 1.0 - smoothing + off;
    return torch::full({y.size(0), classes}, off, y.options().dtype(torch::kFloat)).scatter_(1, y.unsqueeze(1), on);
  }

  // Mixes images in place; returns soft targets.
  Tensor apply(Tensor& x, const Tensor& y, std::mt19937_64& rng) const {
    double lam = 1.0;
    std::uniform_real_distribution<double> u(0, 1);
    if (u(rng) < o.mixup_prob) {
      const bool use_cutmix = o.cutmix > 0 && (o.mixup <= 0 || u(rng) < o.mixup_switch_prob);
      lam = beta(rng, use_cutmix ? o.cutmix : o.mixup);
      Tensor flipped = x.flip(0);
      if (use_cutmix) {
        const int64_t H = x.size(2), W = x.size(3);
        const double cut = std::sqrt(1.0 - lam);
        const int64_t ch = static_cast<int64_t>(H * cut), cw = static_cast<int64_t>(W * cut);
        std::uniform_int_distribution<int64_t> cy(0, H - 1), cx(0, W - 1);
        const int64_t yc = cy(rng), xc = cx(rng);
        const int64_t y0 = std::clamp<int64_t>(yc - ch / 2, 0, H), y1 = std::clamp<int64_t>(yc + ch / 2, 0, H);
        const int64_t x0 = std::clamp<int64_t>(xc - cw / 2, 0, W), x1 = std::clamp<int64_t>(xc + cw / 2, 0, W);
        x.slice(2, y0, y1).slice(3, x0, x1).copy_(flipped.slice(2, y0, y1).slice(3, x0, x1));
        lam = 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / (H * W);  // correct for clipping
      } else {
        x.mul_(lam).add_(flipped, 1.0 - lam);
      }
    }
    Tensor t = smooth_one_hot(y);
    return t * lam + t.flip(0) * (1.0 - lam);
  }
};

}  // namespace

RunResult run_classification(RunContext& ctx) {
  const RunSpec& spec = ctx.spec;
  const ExperimentConfig& cfg = spec.config;
  const auto& vit = dynamic_cast<const ViTOptions&>(*cfg.model);
  const torch::Device device = ctx.device;
  const bool bf16 = device.is_cuda() ? cfg.train.precision != "fp32" : cfg.train.precision == "bf16";

  // ---- data ----
  const DatasetType& dtype = dataset_registry().get(cfg.data.dataset);
  DatasetRequest req;
  req.root = cfg.data.root.empty() ? dtype.default_root : cfg.data.root;
  if (req.root.empty() && cfg.data.dataset != "synthetic")
    throw ConfigError(Origin{}, "data.root", fmt::format("data set '{}' has no default location; set data.root", cfg.data.dataset));
  req.synthetic_classes = cfg.data.synthetic_classes, req.synthetic_image = cfg.data.synthetic_image;
  req.synthetic_channels = cfg.data.synthetic_channels, req.seed = 0;
  req.split = "train";
  req.synthetic_size = cfg.data.synthetic_size;
  DatasetPtr train_set = subset(dtype.open(req), cfg.data.train_subset);
  req.split = "val";
  req.synthetic_size = std::max<int64_t>(cfg.data.synthetic_size / 4, 1);
  DatasetPtr val_set = subset(dtype.open(req), cfg.data.val_subset);

  const int64_t size = cfg.data.image_size > 0 ? cfg.data.image_size : train_set->native_size();
  if (size <= 0)
    throw ConfigError(Origin{}, "data.image_size", "the images of " + train_set->describe() + " vary in size; set data.image_size");
  if (size != vit.img_size)
    throw ConfigError(Origin{}, "model.img_size",
                      fmt::format("the model expects {} px images but the data are {} px; set model.img_size: {} or "
                                  "data.image_size: {}",
                                  vit.img_size, size, size, vit.img_size));
  if (vit.in_chans != train_set->channels())
    throw ConfigError(Origin{}, "model.in_chans",
                      fmt::format("the data have {} channel(s) but model.in_chans is {}; set model.in_chans: {}",
                                  train_set->channels(), vit.in_chans, train_set->channels()));
  if (vit.num_classes != train_set->num_classes())
    throw ConfigError(Origin{}, "model.num_classes",
                      fmt::format("the data have {} classes but model.num_classes is {}; set model.num_classes: {}",
                                  train_set->num_classes(), vit.num_classes, train_set->num_classes()));
  const auto mean = cfg.data.mean.empty() ? dtype.mean : cfg.data.mean;
  const auto stdv = cfg.data.std.empty() ? dtype.std : cfg.data.std;
  auto train_tf = std::make_shared<ImageTransform>(cfg.data.augment, true, size, vit.in_chans, mean, stdv);
  auto eval_tf = std::make_shared<ImageTransform>(cfg.data.augment, false, size, vit.in_chans, mean, stdv);
  LoaderOptions lo;
  lo.batch_size = cfg.data.batch_size, lo.workers = cfg.data.workers, lo.prefetch = cfg.data.prefetch;
  lo.seed = static_cast<uint64_t>(spec.seed), lo.rank = ctx.rank, lo.world = ctx.world;
  Loader train_loader(train_set, train_tf, lo);
  lo.shuffle = false, lo.drop_last = false;
  lo.batch_size = cfg.data.eval_batch_size > 0 ? cfg.data.eval_batch_size : cfg.data.batch_size;
  Loader val_loader(val_set, eval_tf, lo);
  train_loader.start_epoch(0);
  const int64_t steps_per_epoch = train_loader.batches_per_epoch();
  const int64_t schedule_steps = steps_per_epoch * cfg.schedule.epochs;
  const int64_t total_steps = cfg.train.max_steps > 0 ? std::min(cfg.train.max_steps, schedule_steps) : schedule_steps;

  // ---- model, optimizer ----
  torch::manual_seed(static_cast<uint64_t>(spec.seed));
  auto model = std::dynamic_pointer_cast<Classifier>(model_registry().get(cfg.model_type).build(*cfg.model));
  model->to(device);
  std::shared_ptr<Classifier> ema;
  if (cfg.train.ema) {
    ema = std::dynamic_pointer_cast<Classifier>(model_registry().get(cfg.model_type).build(*cfg.model));
    ema->to(device);
    update_ema(*ema, *model, 0.0);
    ema->eval();
  }
  Optimizer opt(cfg.optim, make_param_groups(*model, cfg.optim.weight_decay, cfg.optim.layer_decay));
  std::vector<Tensor> all_params;
  for (const auto& g : opt.groups()) all_params.insert(all_params.end(), g.params.begin(), g.params.end());
  const double peak_lr = effective_lr(cfg, ctx.world);
  const int64_t nparams = count_parameters(*model);

  MetricsLog metrics(spec.dir / "metrics.jsonl");
  TrainState st;
  st.extra = json{{"best_top1", 0.0}};
  std::string resumed_from;
  // A run that never checkpointed starts over; a resumed one keeps the metrics its checkpoint covers.
  const bool resumed = load_latest_checkpoint(spec.dir, *model, ema.get(), opt, st, &resumed_from);
  metrics.keep_first(resumed ? st.metrics_lines : 0);
  Progress progress(ctx.label, total_steps, st.step);
  if (!resumed_from.empty())
    progress.line(fmt::format("resuming at step {} (epoch {}, batch {}) from {}", st.step, st.epoch, st.batch,
                              fs::path(resumed_from).filename().string()));
  else
    progress.line(fmt::format("{} parameters, {} steps ({} epochs x {}), lr {:.3g}, {}", nparams, total_steps,
                              cfg.schedule.epochs, steps_per_epoch, peak_lr, train_set->describe()));

  const Mixer mixer{cfg.data.augment, vit.num_classes, cfg.train.label_smoothing};
  namespace F = torch::nn::functional;
  const auto t_start = std::chrono::steady_clock::now();
  auto wall = [&] { return st.wall_s + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count(); };
  json last_eval;
  std::string status = "finished";
  json diverged;
  double loss_acc = 0, imgs_acc = 0;
  int64_t loss_n = 0;
  auto t_log = std::chrono::steady_clock::now();
  bool stop = false;

  auto do_eval = [&](int64_t epoch) {
    EvalResult r = evaluate(*model, val_loader, device, bf16);
    json j = {{"split", "val"}, {"step", st.step}, {"epoch", epoch}, {"top1", r.top1}, {"top5", r.top5}, {"loss", r.loss}, {"n", r.n}};
    std::string ema_text;
    if (ema) {
      EvalResult e = evaluate(*ema, val_loader, device, bf16);
      j["ema_top1"] = e.top1, j["ema_top5"] = e.top5, j["ema_loss"] = e.loss;
      ema_text = fmt::format(", EMA top-1 {:.2f}", e.top1);
    }
    metrics.write(j, true);
    st.extra["best_top1"] = std::max(st.extra["best_top1"].get<double>(), r.top1);
    last_eval = j;
    progress.line(fmt::format("epoch {} val: top-1 {:.2f}%, top-5 {:.2f}%, loss {:.4f}{}", epoch + 1, r.top1, r.top5, r.loss, ema_text));
  };

  model->train();
  for (; st.epoch < cfg.schedule.epochs && !stop && status == "finished"; ++st.epoch, st.batch = 0) {
    train_loader.start_epoch(st.epoch, st.batch);
    Batch b;
    while (train_loader.next(b)) {
      if (st.step >= total_steps) break;
      const double lr = scheduled_lr(cfg.schedule, peak_lr, static_cast<double>(st.step) / steps_per_epoch);
      Tensor x = b.images.to(device, true);
      Tensor y = b.labels.to(device, true);
      Tensor loss;
      {
        AutocastGuard ac(bf16, device.type());
        if (mixer.active()) {
          std::mt19937_64 rng(mix_seed(static_cast<uint64_t>(spec.seed) + 101, static_cast<uint64_t>(st.step)));
          Tensor target = mixer.apply(x, y, rng);
          Tensor logits = model->forward(x).to(torch::kFloat);
          loss = torch::sum(-target * torch::log_softmax(logits, -1), -1).mean();
        } else {
          Tensor logits = model->forward(x).to(torch::kFloat);
          loss = F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().label_smoothing(cfg.train.label_smoothing));
        }
      }
      const double loss_v = loss.item<double>();
      if (!std::isfinite(loss_v)) {
        diverged = {{"step", st.step}, {"reason", fmt::format("loss is {}", loss_v)}};
        status = "diverged";
        break;
      }
      loss.backward();
      const double gnorm = grad_norm_and_clip(all_params, cfg.optim.clip_grad);
      if (!std::isfinite(gnorm) || gnorm > cfg.train.max_grad_norm_diverged) {
        diverged = {{"step", st.step}, {"reason", fmt::format("gradient norm {:.3g}", gnorm)}};
        status = "diverged";
        break;
      }
      opt.step(lr);
      opt.zero_grad();
      if (ema) update_ema(*ema, *model, cfg.train.ema_decay);
      ++st.step;
      st.batch = b.index + 1;
      loss_acc += loss_v, imgs_acc += static_cast<double>(x.size(0)), ++loss_n;
      if (st.step % cfg.train.log_every == 0 || st.step == total_steps) {
        auto now = std::chrono::steady_clock::now();
        const double dt = std::chrono::duration<double>(now - t_log).count();
        metrics.write({{"split", "train"}, {"step", st.step}, {"epoch", st.epoch}, {"loss", loss_acc / loss_n},
                       {"lr", lr}, {"grad_norm", gnorm}, {"img_per_s", imgs_acc * ctx.world / std::max(dt, 1e-9)}});
        progress.update(st.step, fmt::format("epoch {}/{} loss {:.4f} lr {:.2e} {:.0f} img/s", st.epoch + 1,
                                             cfg.schedule.epochs, loss_acc / loss_n, lr, imgs_acc * ctx.world / std::max(dt, 1e-9)));
        loss_acc = imgs_acc = 0, loss_n = 0, t_log = now;
      }
      if (cfg.train.checkpoint_every > 0 && st.step % cfg.train.checkpoint_every == 0) {
        st.wall_s = wall(), st.metrics_lines = metrics.lines();
        save_checkpoint(spec.dir, *model, ema.get(), opt, st, cfg.train.keep_checkpoints);
      }
      if (ctx.stop && ctx.stop->load()) {
        stop = true;
        break;
      }
    }
    if (status != "finished" || stop) break;
    const bool last = st.epoch + 1 == cfg.schedule.epochs || st.step >= total_steps;
    if ((st.epoch + 1) % cfg.train.eval_every == 0 || last) {
      const auto t_eval = std::chrono::steady_clock::now();
      do_eval(st.epoch);
      t_log += std::chrono::steady_clock::now() - t_eval;  // img/s counts training time only
    }
    if (last) {
      ++st.epoch, st.batch = 0;
      break;
    }
    // End of epoch: the checkpoint records the next epoch's start.
    TrainState next = st;
    next.epoch += 1, next.batch = 0, next.wall_s = wall(), next.metrics_lines = metrics.lines();
    save_checkpoint(spec.dir, *model, ema.get(), opt, next, cfg.train.keep_checkpoints);
  }
  progress.finish();

  json summary = {{"experiment", spec.experiment}, {"variant", spec.variant}, {"seed", spec.seed},
                  {"params", nparams}, {"steps", st.step}, {"epochs", cfg.schedule.epochs},
                  {"wall_s", wall()}, {"device", device.str()}};
  if (stop) {
    st.wall_s = wall(), st.metrics_lines = metrics.lines();
    save_checkpoint(spec.dir, *model, ema.get(), opt, st, cfg.train.keep_checkpoints);
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
  summary["top1"] = last_eval.value("top1", 0.0);
  summary["top5"] = last_eval.value("top5", 0.0);
  summary["val_loss"] = last_eval.value("loss", 0.0);
  summary["best_top1"] = st.extra["best_top1"];
  if (ema) summary["ema_top1"] = last_eval.value("ema_top1", 0.0);
  // Final weights with timm's state-dict names, loadable by timm / safetensors.load_file.
  write_safetensors(spec.dir / "model.safetensors", state_dict(*model), {{"format", "pt"}});
  if (ema) write_safetensors(spec.dir / "model_ema.safetensors", state_dict(*ema), {{"format", "pt"}});
  return {"finished", summary};
}

}  // namespace dyt
