// Executes the runs an experiment planned (the body of `dyt run`): refuses changed configs before
// anything runs, takes each run's lock, reuses finished runs, writes config.yaml and env.json,
// resolves the device, runs the task, writes summary.json. Interrupted runs stop the whole
// execution with their progress checkpointed.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <string>
#include <vector>

#include "runner/experiment/experiment.h"

namespace dyt {

struct ExecuteOptions {
  bool force = false;    // discard runs made with another config
  double wait_s = 0.0;   // wait this long for runs locked by another process
  std::vector<std::string> argv;  // recorded in env.json
  std::string resume_command;     // printed when interrupted
  int64_t rank = 0, world = 1;    // this process among the job's; only rank 0 writes run files
};

struct ExecuteReport {
  int64_t done = 0, skipped = 0, diverged = 0;
  bool interrupted = false;
};

ExecuteReport execute_runs(const Experiment& e, const std::vector<RunSpec>& runs, const ExecuteOptions& o);

// Set by SIGINT / SIGTERM once install_stop_handlers() ran; training loops checkpoint and return.
void install_stop_handlers();
const std::atomic<bool>& stop_requested();

// cpu | cuda | auto (CUDA when LibTorch sees a GPU); cuda without a GPU is a config error.
torch::Device resolve_device(const std::string& want);

}  // namespace dyt
