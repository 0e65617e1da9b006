// Tasks: what a run does (train a classifier, pretrain an MAE, ...), by name.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>

#include "models/registry.h"
#include "runner/experiment.h"

namespace dyt {

struct RunContext {
  const RunSpec& spec;
  torch::Device device = torch::kCPU;
  std::string label;  // e.g. "[2/6 smoke/vit_fmnist dyt seed0]" for progress lines
  const std::atomic<bool>* stop = nullptr;  // set by SIGINT/SIGTERM: checkpoint and return
  int64_t rank = 0, world = 1;
};

struct RunResult {
  std::string status;      // finished | diverged | interrupted
  nlohmann::json summary;  // written to summary.json (metrics, steps, wall time, ...)
};

struct TaskType {
  std::string help;
  std::function<RunResult(RunContext&)> run;
};

const Registry<TaskType>& task_registry();

// Task entry points (one translation unit each).
RunResult run_classification(RunContext& ctx);
RunResult run_mae_pretrain(RunContext& ctx);
RunResult run_wav2vec2(RunContext& ctx);

}  // namespace dyt
