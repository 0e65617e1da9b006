// Task `classification`: supervised image classification (the paper's Table 1 protocol at any
// scale, and MAE fine-tuning / linear probing when `init:` names pretrained weights). The loop
// itself is run_training_loop; this file supplies the data, the loss (label smoothing or
// mixup/cutmix soft targets) and the evaluation (top-1, top-5, loss, and the EMA's).
#include <fmt/format.h>

#include <random>

#include "datasets/loader.h"
#include "models/vit.h"
#include "runner/analysis.h"
#include "runner/image_data.h"
#include "runner/task.h"
#include "runner/trainer.h"

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
    Tensor hit = std::get<1>(logits.topk(k, 1)).eq(y.unsqueeze(1));
    correct1 += hit.select(1, 0).sum().item<double>();
    correct5 += hit.any(1).sum().item<double>();
    n += y.size(0);
  }
  model.train(was_training);
  const double d = static_cast<double>(std::max<int64_t>(1, n));
  return {100.0 * correct1 / d, 100.0 * correct5 / d, loss_sum / d, n};
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
        lam = 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(H * W);  // clipped box
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
  const auto& vit = dynamic_cast<const ViTOptions&>(cfg.model());
  const torch::Device device = ctx.device;
  const bool bf16 = use_bf16(cfg, device);

  ImageData data = open_image_data(cfg, vit.img_size, vit.in_chans, ctx.rank, ctx.world, static_cast<uint64_t>(spec.seed));
  if (vit.num_classes != data.num_classes)
    throw ConfigError(Origin{}, "model.num_classes",
                      fmt::format("the data have {} classes but model.num_classes is {}; set model.num_classes: {}",
                                  data.num_classes, vit.num_classes, data.num_classes));

  torch::manual_seed(static_cast<uint64_t>(spec.seed));
  auto model = std::dynamic_pointer_cast<Classifier>(model_registry().get(cfg.model_type).build(cfg.model()));
  json init_report = initialise_from(ctx, *model);
  model->to(device);
  std::shared_ptr<Classifier> ema;
  if (cfg.train.ema) {
    ema = std::dynamic_pointer_cast<Classifier>(model_registry().get(cfg.model_type).build(cfg.model()));
    ema->to(device);
    update_ema(*ema, *model, 0.0);
    ema->eval();
  }
  Optimizer opt(cfg.optim, make_param_groups(*model, cfg.optim.weight_decay, cfg.optim.layer_decay));

  const Mixer mixer{cfg.data.augment, vit.num_classes, cfg.train.label_smoothing};
  namespace F = torch::nn::functional;
  LoopHooks hooks;
  hooks.steps_per_epoch = data.train->batches_per_epoch();
  hooks.start_epoch = [&](int64_t epoch, int64_t first) { data.train->start_epoch(epoch, first); };
  hooks.next_step = [&](int64_t step, StepResult& r, int64_t& index) {
    Batch b;
    if (!data.train->next(b)) return false;
    index = b.index;
    Tensor x = b.images.to(device, true);
    Tensor y = b.labels.to(device, true);
    AutocastGuard ac(bf16, device.type());
    if (mixer.active()) {
      std::mt19937_64 rng(mix_seed(static_cast<uint64_t>(spec.seed) + 101, static_cast<uint64_t>(step)));
      Tensor target = mixer.apply(x, y, rng);
      Tensor logits = model->forward(x).to(torch::kFloat);
      r.loss = torch::sum(-target * torch::log_softmax(logits, -1), -1).mean();
    } else {
      Tensor logits = model->forward(x).to(torch::kFloat);
      r.loss = F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().label_smoothing(cfg.train.label_smoothing));
    }
    r.samples = x.size(0);
    return true;
  };
  hooks.evaluate = [&](int64_t) {
    EvalResult e = evaluate(*model, *data.val, device, bf16);
    json j = {{"top1", e.top1}, {"top5", e.top5}, {"loss", e.loss}, {"n", e.n}};
    if (ema) {
      EvalResult q = evaluate(*ema, *data.val, device, bf16);
      j["ema_top1"] = q.top1, j["ema_top5"] = q.top5, j["ema_loss"] = q.loss;
    }
    return j;
  };
  hooks.save_final = [&](json& summary) {
    save_final_weights(spec.dir, *model, ema.get());
    if (cfg.train.capture_mapping <= 0) return;
    // Fig. 2/4: what each norm layer does to its inputs, on validation images.
    model->eval();
    data.val->start_epoch(0);
    summary["norm_mapping"] = capture_norm_mapping(
        *model,
        [&](int64_t) {
          Batch b;
          if (!data.val->next(b)) return false;
          AutocastGuard ac(bf16, device.type());
          model->forward(b.images.to(device));
          return true;
        },
        cfg.train.capture_mapping, spec.dir / "norm_mapping.safetensors");
    model->train();
  };
  json summary = {{"experiment", spec.experiment}, {"variant", spec.variant}, {"seed", spec.seed},
                  {"params", count_parameters(*model)}, {"data", data.description}};
  if (!init_report.is_null()) summary["init"] = init_report;
  return run_training_loop(ctx, cfg, {*model, ema.get(), opt}, hooks, summary);
}

}  // namespace dyt
