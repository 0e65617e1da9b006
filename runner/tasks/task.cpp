// The Task interface's shared setup path and the task registry.
#include "runner/tasks/task.h"

#include <fmt/format.h>

#include "core/distributed.h"
#include "runner/tasks/image_data.h"
#include "runner/train/components.h"
#include "runner/train/loop.h"

namespace dyt {
using json = nlohmann::json;

json to_json(const std::vector<MetricInfo>& metrics) {
  json out = json::array();
  for (const auto& m : metrics)
  {
    json j = {{"name", m.name}, {"display", m.display}, {"higher_is_better", m.higher_is_better}};
    if (std::isfinite(m.chance)) j["chance"] = m.chance, j["chance_label"] = m.chance_label;
    out.push_back(j);
  }
  return out;
}

Task::Task(RunContext& ctx)
    : ctx_(ctx), spec_(ctx.spec), cfg_(ctx.spec.config), device_(ctx.device), precision_(resolve_precision(cfg_.train.precision, ctx.device)) {}

Task::~Task() = default;

std::vector<double> Task::sum_over_ranks(const std::vector<double>& values) const {
  return ctx_.dist ? ctx_.dist->sum(values) : values;
}

void Task::finalize(json&) { save_final_weights(spec_.dir, *model_, ema_.get(), cfg_.model().interop_config()); }

RunResult Task::run() {
  // The order is part of a run's identity: data first (its own seeds), then the model's random
  // initialisation from the run's seed, init:, the device, the EMA copy, the optimizer.
  open_data();
  torch::manual_seed(static_cast<uint64_t>(spec_.seed));
  const ModelType& type = model_registry().get(cfg_.model_type);
  model_ = type.build(cfg_.model());
  check_model(*model_);
  json init_report = initialise_from(ctx_, *model_);
  model_->to(device_);
  if (uses_ema() && cfg_.train.ema) {
    ema_ = type.build(cfg_.model());
    ema_->to(device_);
    update_ema(*ema_, *model_, 0.0);
    ema_->eval();
  }
  opt_ = std::make_unique<Optimizer>(cfg_.optim,
                                     make_param_groups(*model_, cfg_.optim.weight_decay, cfg_.optim.layer_decay,
                                                       cfg_.optim.decay_all));
  json summary = {{"experiment", spec_.experiment}, {"variant", spec_.variant}, {"seed", spec_.seed},
                  {"params", count_parameters(*model_)}, {"data", data_description()}, {"train_loss_display", train_loss_display()}};
  if (!init_report.is_null()) summary["init"] = init_report;
  return run_training_loop(ctx_, *this, summary);
}

json Task::evaluate_weights(const std::filesystem::path& weights) {
  open_data();
  const ModelType& type = model_registry().get(cfg_.model_type);
  model_ = type.build(cfg_.model());
  check_model(*model_);
  {
    torch::NoGradGuard ng;
    load_state_dict(*model_, read_safetensors(weights), "", /*strict=*/true);
  }
  model_->to(device_);
  model_->eval();
  json out = {{"val", evaluate(0)}, {"params", count_parameters(*model_)}, {"data", data_description()}};
  json t = test();
  if (!t.is_null()) out["test"] = t;
  return out;
}

// ---- registry ------------------------------------------------------------------------------------
namespace {
Registry<TaskType> build_task_registry() {
  Registry<TaskType> r("task");
  r.add("classification", {"supervised image classification (top-1/top-5) of any model that declares its image "
                           "input; fine-tuning / linear probing with init:",
                           make_classification_task});
  r.add("mae", {"masked-autoencoder pretraining (masked-patch MSE); writes a reconstruction grid", make_mae_task});
  r.add("wav2vec2", {"wav2vec 2.0 self-supervised speech pretraining (contrastive loss in bits)", make_wav2vec2_task});
  return r;
}
}  // namespace

const Registry<TaskType>& task_registry() {
  static const Registry<TaskType> registry = build_task_registry();
  return registry;
}

RunResult run_task(RunContext& ctx) { return task_registry().get(ctx.spec.config.task).make(ctx)->run(); }

}  // namespace dyt
