// The training loop every task shares. A task supplies its data and loss as hooks; the loop
// owns the rest: resume from the newest checkpoint, the lr schedule, backward, gradient norm and
// clipping, divergence detection (NaN/Inf loss or exploding gradients), the optimizer step, EMA,
// metrics lines, the progress line, periodic and end-of-epoch checkpoints, SIGINT/SIGTERM, and
// evaluation every train.eval_every epochs.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "runner/task.h"
#include "runner/train.h"

namespace dyt {

struct StepResult {
  torch::Tensor loss;   // scalar, differentiable
  int64_t samples = 0;  // examples in the batch (for throughput)
  nlohmann::json extra = nlohmann::json::object();  // more numbers for the metrics line
};

struct LoopHooks {
  int64_t steps_per_epoch = 0;
  // Starts an epoch at batch `first_batch` (non-zero when resuming mid-epoch).
  std::function<void(int64_t epoch, int64_t first_batch)> start_epoch;
  // Fetches the next batch and computes its loss; false at the end of the epoch. `batch_index`
  // receives the batch's number within the epoch.
  std::function<bool(int64_t step, StepResult& out, int64_t& batch_index)> next_step;
  // Evaluates the model; the returned object becomes a {"split": "val"} metrics line.
  std::function<nlohmann::json(int64_t epoch)> evaluate;
  std::string primary_metric = "top1";  // tracked as best_<metric> in the summary
  bool higher_is_better = true;
  // Called after each optimizer step (e.g. temperature annealing), may be null.
  std::function<void(int64_t step)> after_step;
  // Writes the final weights (and may add to the summary); default: save_final_weights.
  std::function<void(nlohmann::json& summary)> save_final;
};

struct LoopModels {
  torch::nn::Module& model;
  torch::nn::Module* ema = nullptr;
  Optimizer& opt;
};

// Applies the run's `init:` options to a freshly built model: loads the weights of an earlier
// stage (init.from_stage) or a file (init.checkpoint) by name and shape, re-initialises the head,
// freezes the backbone. Returns a report for summary.json (null when there is nothing to do).
nlohmann::json initialise_from(const RunContext& ctx, torch::nn::Module& model);

// model.safetensors (and model_ema.safetensors) with the model's state-dict names.
void save_final_weights(const std::filesystem::path& dir, const torch::nn::Module& model, const torch::nn::Module* ema);

// Runs (or resumes) training to the end of the schedule or train.max_steps. Returns the run's
// status and summary (the summary holds the last evaluation's metrics at its top level).
RunResult run_training_loop(RunContext& ctx, const ExperimentConfig& cfg, LoopModels m, const LoopHooks& hooks,
                            nlohmann::json summary);

}  // namespace dyt
