// Task `classification`: supervised image classification (the paper's Table 1 protocol at any
// scale, and MAE fine-tuning / linear probing when `init:` names pretrained weights). The loop
// itself is run_training_loop; this file supplies the data, the loss (label smoothing or
// mixup/cutmix soft targets) and the evaluation (top-1, top-5, loss, and the EMA's).
#include <fmt/format.h>

#include <random>

#include "datasets/loader.h"
#include "runner/train/norm_probes.h"
#include "runner/tasks/image_data.h"
#include "runner/tasks/task.h"
#include "runner/train/loop.h"

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;
using torch::Tensor;

namespace {

struct EvalResult {
  double top1 = 0, top5 = 0, loss = 0;
  int64_t n = 0;
};

// Top-1/top-5 hits, summed loss and count over this rank's shard of the validation data.
std::vector<double> evaluate_shard(Classifier& model, Loader& loader, const torch::Device& device,
                                   const Precision& precision) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  AutocastGuard ac(precision, device.type());
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
  return {correct1, correct5, loss_sum, static_cast<double>(n)};
}

EvalResult from_sums(const std::vector<double>& s) {
  const double d = std::max(1.0, s[3]);
  return {100.0 * s[0] / d, 100.0 * s[1] / d, s[2] / d, static_cast<int64_t>(s[3])};
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

namespace {

// Classification of images by any model that declares its image input (ModelOptions::
// image_input) and is a Classifier: cross-entropy with label smoothing, or soft targets under
// mixup/cutmix; top-1/top-5 on the validation split, of the EMA weights too when train.ema.
class ClassificationTask : public Task {
 public:
  explicit ClassificationTask(RunContext& ctx) : Task(ctx) {
    auto in = cfg_.model().image_input();
    if (!in)
      throw ConfigError(Origin{}, "model.type",
                        fmt::format("task: classification needs an image model; '{}' declares no image input",
                                    cfg_.model_type));
    input_ = *in;
  }

  void open_data() override {
    data_ = open_image_data(cfg_, input_.size, input_.channels, ctx_.rank, ctx_.world, static_cast<uint64_t>(spec_.seed),
                            ctx_.device.is_cuda());
    if (input_.classes != data_.num_classes)
      throw ConfigError(Origin{}, "model.num_classes",
                        fmt::format("the data have {} classes but model.num_classes is {}; set model.num_classes: {}",
                                    data_.num_classes, input_.classes, data_.num_classes));
    mixer_ = std::make_unique<Mixer>(Mixer{cfg_.data.augment, input_.classes, cfg_.train.label_smoothing});
  }
  void check_model(Model& m) override {
    if (!dynamic_cast<Classifier*>(&m))
      throw ConfigError(Origin{}, "model.type", "'" + cfg_.model_type + "' is not an image classifier");
  }
  bool uses_ema() const override { return true; }
  std::string data_description() const override { return data_.description + "; validation: " + data_.val_source; }
  int64_t steps_per_epoch() const override { return data_.train->batches_per_epoch(); }
  void start_epoch(int64_t epoch, int64_t first) override { data_.train->start_epoch(epoch, first); }

  bool next_loss(int64_t step, StepResult& r, int64_t& index) override {
    namespace F = torch::nn::functional;
    Batch b;
    if (!data_.train->next(b)) return false;
    index = b.index;
    Tensor x = b.images.to(device_, true);
    Tensor y = b.labels.to(device_, true);
    AutocastGuard ac(precision_, device_.type());
    auto& net = classifier();
    if (mixer_->active()) {
      std::mt19937_64 rng(mix_seed(static_cast<uint64_t>(spec_.seed) + 101, static_cast<uint64_t>(step)));
      Tensor target = mixer_->apply(x, y, rng);
      Tensor logits = net.forward(x).to(torch::kFloat);
      r.loss = torch::sum(-target * torch::log_softmax(logits, -1), -1).mean();
    } else {
      Tensor logits = net.forward(x).to(torch::kFloat);
      r.loss = F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().label_smoothing(cfg_.train.label_smoothing));
    }
    r.samples = x.size(0);
    return true;
  }

  json evaluate(int64_t) override { return measure(*data_.val); }
  json test() override { return data_.test ? measure(*data_.test) : json(); }

  std::vector<MetricInfo> metrics() const override {
    const double k = static_cast<double>(input_.classes);
    const std::string c = fmt::format("chance ({} classes)", input_.classes);
    return {{"top1", "top-1 accuracy (%)", true, 100.0 / k, c},
            {"top5", "top-5 accuracy (%)", true, 100.0 * std::min(5.0, k) / k, c},
            {"loss", "validation loss (cross-entropy)", false, std::log(k), c}};
  }
  std::string train_loss_display() const override {
    if (cfg_.data.augment.mixup > 0 || cfg_.data.augment.cutmix > 0) return "training loss (soft-target cross-entropy, mixup/cutmix)";
    return cfg_.train.label_smoothing > 0 ? fmt::format("training loss (cross-entropy, label smoothing {})", cfg_.train.label_smoothing)
                                          : "training loss (cross-entropy)";
  }

  void finalize(json& summary) override {
    Task::finalize(summary);
    if (cfg_.train.capture_mapping <= 0) return;
    // Fig. 2/4: what each norm layer does to its inputs, on validation images.
    auto& net = classifier();
    net.eval();
    data_.val->start_epoch(0);
    summary["norm_mapping"] = capture_norm_mapping(
        net,
        [&](int64_t) {
          Batch b;
          if (!data_.val->next(b)) return false;
          AutocastGuard ac(precision_, device_.type());
          net.forward(b.images.to(device_));
          return true;
        },
        cfg_.train.capture_mapping, spec_.dir / "norm_mapping.safetensors");
    net.train();
  }

 private:
  Classifier& classifier() { return dynamic_cast<Classifier&>(model()); }
  // Top-1/top-5/loss over one split (all ranks' shards), of the EMA weights too.
  json measure(Loader& loader) {
    EvalResult e = from_sums(sum_over_ranks(evaluate_shard(classifier(), loader, device_, precision_)));
    json j = {{"top1", e.top1}, {"top5", e.top5}, {"loss", e.loss}, {"n", e.n}};
    if (ema()) {
      EvalResult q = from_sums(sum_over_ranks(evaluate_shard(dynamic_cast<Classifier&>(*ema()), loader, device_, precision_)));
      j["ema_top1"] = q.top1, j["ema_top5"] = q.top5, j["ema_loss"] = q.loss;
    }
    return j;
  }
  ImageInput input_;
  ImageData data_;
  std::unique_ptr<Mixer> mixer_;
};

}  // namespace

std::unique_ptr<Task> make_classification_task(RunContext& ctx) { return std::make_unique<ClassificationTask>(ctx); }

}  // namespace dyt
