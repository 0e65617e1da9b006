// Executes the runs an experiment planned (the body of `dyt run`): refuses changed configs before
// anything runs, takes each run's lock, reuses finished runs, writes config.yaml and env.json,
// resolves the device, runs the task, writes summary.json. Interrupted runs stop the whole
// execution with their progress checkpointed. In a data-parallel job rank 0 decides (configs,
// locks, reuse) and tells the others; all ranks train each run; only rank 0 writes; a rank whose
// config differs from rank 0's is refused before anything runs.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <string>
#include <vector>

#include "runner/experiment/experiment.h"

namespace dyt {

class Distributed;

struct ExecuteOptions {
  bool force = false;    // discard runs made with another config
  double wait_s = 0.0;   // wait this long for runs locked by another process
  std::vector<std::string> argv;  // recorded in env.json
  std::string resume_command;     // printed when interrupted
  Distributed* dist = nullptr;    // a data-parallel job: every run trained by all ranks, rank 0 writes
  int64_t device_index = 0;       // the GPU of this process (cuda:LOCAL_RANK)
  int64_t rotate = 0;             // start the plan at this run (spread mode: one process per GPU)
  int64_t spread_world = 1;       // spread mode: processes sharing the sweep (recorded in env.json)
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
// `index`: the GPU (a data-parallel job's LOCAL_RANK).
torch::Device resolve_device(const std::string& want, int64_t index = 0);

}  // namespace dyt
