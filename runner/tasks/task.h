// Tasks: what a run trains (a classifier, an MAE, wav2vec 2.0), behind one interface.
//
// A task supplies its data, the loss of one batch, its evaluation and the metrics it reports
// (name, display name, direction). Everything else is shared: Task::run() is the one setup path
// (data, seed, model from the registry, init:, device, EMA, optimizer with the recipe's groups,
// the summary's header) and then the task-agnostic training loop (runner/train/loop.h) with its
// hooks. Adding a task: derive from Task, register it in task.cpp (README "Extending the suite").
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/registry.h"
#include "models/model.h"
#include "runner/experiment/experiment.h"
#include "runner/train/components.h"

namespace dyt {

class Optimizer;
class Distributed;

struct RunContext {
  const RunSpec& spec;
  torch::Device device = torch::kCPU;
  std::string label;  // e.g. "[2/6 smoke/vit_fmnist dyt seed0]" for progress lines
  const std::atomic<bool>* stop = nullptr;  // set by SIGINT/SIGTERM: checkpoint and return
  int64_t rank = 0, world = 1;
  Distributed* dist = nullptr;  // the job's process group when world > 1 (core/distributed.h)
};

struct RunResult {
  std::string status;      // finished | diverged | interrupted
  nlohmann::json summary;  // written to summary.json (metrics, steps, wall time, ...)
};

// A metric a task's evaluation reports. The first one a task lists is its primary metric: the
// summary tracks best_<name>, and tables and figures read the direction from summary.json.
struct MetricInfo {
  std::string name;     // key in the evaluation line of metrics.jsonl and in summary.json
  std::string display;  // axis and column label, e.g. "top-1 accuracy (%)"
  bool higher_is_better = true;
  double chance = std::nan("");  // the value of a uniform guess, where one exists (a line in the figures)
  std::string chance_label;      // e.g. "chance (10 classes)"
};
nlohmann::json to_json(const std::vector<MetricInfo>& metrics);

struct StepResult {
  torch::Tensor loss;   // scalar, differentiable
  int64_t samples = 0;  // examples in the batch (for throughput)
  nlohmann::json extra = nlohmann::json::object();  // more numbers for the metrics line
};

class Task {
 public:
  explicit Task(RunContext& ctx);
  virtual ~Task();

  // ---- supplied by each task ------------------------------------------------------------------
  // Opens the data. Runs first, before the model's random initialisation is seeded.
  virtual void open_data() = 0;
  // Refuses a model the task cannot train (wrong kind, classes that do not match the data).
  virtual void check_model(Model& model) { (void)model; }
  // Whether the task keeps an exponential moving average of the weights when train.ema is set.
  virtual bool uses_ema() const { return false; }
  virtual std::string data_description() const = 0;
  virtual int64_t steps_per_epoch() const = 0;
  // Starts an epoch at batch `first_batch` (non-zero when resuming mid-epoch).
  virtual void start_epoch(int64_t epoch, int64_t first_batch) = 0;
  // The next batch's loss; false at the end of the epoch. `batch_index` receives the batch's
  // number within the epoch.
  virtual bool next_loss(int64_t step, StepResult& out, int64_t& batch_index) = 0;
  // Evaluates the model; the object becomes a {"split": "val"} line of metrics.jsonl.
  virtual nlohmann::json evaluate(int64_t epoch) = 0;
  // Measures the test split once, after training, when the validation split is held out of the
  // training set (data.holdout); the object becomes a {"split": "test"} line of metrics.jsonl
  // and test_<key> entries of summary.json. Null: the task has no separate test split.
  virtual nlohmann::json test() { return nullptr; }
  virtual std::vector<MetricInfo> metrics() const = 0;
  // What the training loss is, for axis labels (summary.json "train_loss_display").
  virtual std::string train_loss_display() const { return "training loss"; }
  // After each optimizer step (e.g. the quantiser's temperature), with the number of updates done.
  virtual void after_step(int64_t step) { (void)step; }
  // Writes the final weights and any pictures; may add to the summary.
  virtual void finalize(nlohmann::json& summary);

  // ---- shared ---------------------------------------------------------------------------------
  // The one setup path, then the training loop to the end of the schedule (or a stop).
  RunResult run();
  // `dyt eval`: the data, the model with `weights` loaded (every parameter and buffer, by name
  // and shape), then the evaluation: {"val": {...}, "test": {...} when there is a test split}.
  nlohmann::json evaluate_weights(const std::filesystem::path& weights);

  Model& model() { return *model_; }
  Model* ema() { return ema_.get(); }
  Optimizer& optimizer() { return *opt_; }
  const ExperimentConfig& config() const { return cfg_; }

 protected:
  // Element-wise sums over the job's ranks (evaluation counts and sums; each rank evaluates its
  // own exact shard of the validation data). One process: the values themselves.
  std::vector<double> sum_over_ranks(const std::vector<double>& values) const;

  // The model as the type a task needs; a config error naming model.type when it is another.
  template <class M>
  M& model_as(const std::string& what) {
    auto* m = dynamic_cast<M*>(model_.get());
    if (!m) throw ConfigError(Origin{}, "model.type", "'" + cfg_.model_type + "' is not " + what);
    return *m;
  }

  RunContext& ctx_;
  const RunSpec& spec_;
  const ExperimentConfig& cfg_;
  torch::Device device_;
  Precision precision_;  // train.precision on this device (autocast dtype, TF32, loss scaling)

 private:
  ModelPtr model_, ema_;
  std::unique_ptr<Optimizer> opt_;
};

struct TaskType {
  std::string help;
  std::function<std::unique_ptr<Task>(RunContext&)> make;
};

const Registry<TaskType>& task_registry();

// Runs the task the run's config names.
RunResult run_task(RunContext& ctx);

// Built-in tasks (one translation unit each).
std::unique_ptr<Task> make_classification_task(RunContext& ctx);
std::unique_ptr<Task> make_mae_task(RunContext& ctx);
std::unique_ptr<Task> make_wav2vec2_task(RunContext& ctx);

}  // namespace dyt
