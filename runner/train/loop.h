// The training loop every task shares, and its hooks.
//
// The loop knows no task and no analysis. Per update it asks the task for the loss of the next
// batch, runs backward, clips, steps the optimizer; per epoch it asks the task to evaluate. All
// else is a hook, called at fixed points of every update (as detectron2's HookBase, caffe's
// Solver::Callback):
//
//   before_train   resume done, nothing trained yet
//   before_step    lr known, batch not fetched             (norm probes attach)
//   after_loss     loss of a micro-batch computed (or none: end of epoch)
//   before_backward  before each micro-batch's backward; state.micro of state.accum
//                                                            (DDP: the reducer is armed for the last)
//   after_backward gradients of the update ready (averaged over ranks), not yet clipped
//                                                            (DDP: the update's loss over all ranks)
//   before_update  gradients clipped, grad_norm known; may veto  (divergence: loss, gradients)
//   after_update   optimizer stepped                         (EMA)
//   after_step     step counted                              (metrics, progress, checkpoints, stop)
//   after_epoch    epoch done; state.eval holds the evaluation (null when not evaluated)
//                                                            (metrics, best, checkpoint)
//   after_train    loop left: finished, diverged or stopped  (last checkpoint when stopped)
//
// A hook stops the run by setting state.status ("diverged", with state.diverged) or state.stop.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runner/tasks/task.h"
#include "runner/train/components.h"

namespace dyt {

struct LoopState {
  TrainState train;  // step, epoch, batch, wall time before this process, best metrics
  int64_t total_steps = 0, epochs = 0, steps_per_epoch = 0;
  double lr = 0.0;
  StepResult result;       // the current batch's loss, samples and extra numbers
  double loss = 0.0;       // result.loss as a number (after_loss on)
  double grad_norm = 0.0;  // before clipping (before_update on)
  bool overflow = false;   // fp16: a gradient overflowed the loss scale; this update is skipped
  bool got_batch = false;  // after_loss: false at the end of the epoch
  int64_t micro = 0, accum = 1;  // the micro-batch within the update, and how many it has
  nlohmann::json eval;     // after_epoch: the evaluation's metrics line
  std::string status = "finished";
  nlohmann::json diverged;  // {"step", "reason"} when status == "diverged"
  bool stop = false;        // a stop was asked for (SIGINT/SIGTERM): checkpoint and return
  std::function<double()> wall;  // training seconds so far, this process's included
};

class TrainHook {
 public:
  virtual ~TrainHook() = default;
  virtual void before_train(LoopState&) {}
  virtual void before_step(LoopState&) {}
  virtual void after_loss(LoopState&) {}
  virtual void before_backward(LoopState&) {}
  virtual void after_backward(LoopState&) {}
  virtual void before_update(LoopState&) {}
  virtual void after_update(LoopState&) {}
  virtual void after_step(LoopState&) {}
  virtual void after_epoch(LoopState&) {}
  virtual void after_train(LoopState&) {}
};
using HookList = std::vector<std::unique_ptr<TrainHook>>;

// Applies the run's `init:` options to a freshly built model: loads the weights of an earlier
// stage (init.from_stage) or a file (init.checkpoint) by name and shape, re-initialises the head,
// freezes the backbone. Returns a report for summary.json (null when there is nothing to do).
nlohmann::json initialise_from(const RunContext& ctx, torch::nn::Module& model);

// When data.recipe_total_batch is set and the run's total batch differs: what differs (total
// batch, peak lr, the recipe's) and a message; null otherwise.
nlohmann::json recipe_deviation(const ExperimentConfig& cfg, int64_t world);

// model.safetensors (and model_ema.safetensors) with the model's state-dict names, and config.json
// (ModelOptions::interop_config) when given.
void save_final_weights(const std::filesystem::path& dir, const torch::nn::Module& model, const torch::nn::Module* ema,
                        const nlohmann::json& config = nullptr);

// Runs (or resumes) `task` to the end of the schedule or train.max_steps, with the standard hooks
// (EMA, divergence guard, norm probes, metrics and progress, checkpoints, stop signal; data
// parallelism when ctx.dist) and then `extra` ones. In a data-parallel job rank 0 reads the
// checkpoint and every rank receives its state (weights, EMA, optimizer, counters) from rank 0. Returns the run's status and summary (the last evaluation's metrics at its top level).
RunResult run_training_loop(RunContext& ctx, Task& task, nlohmann::json summary, HookList extra = {});

}  // namespace dyt
