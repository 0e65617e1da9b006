// Data parallelism on PyTorch's own engine: the c10d store and process group of LibTorch
// (NCCL on CUDA, Gloo on CPU), launched by torchrun (or srun), and DDP's gradient reducer.
//
// No launcher environment means one process, exactly as before: nothing here is created. With
// one, every process of the job builds the same Distributed from the environment torchrun (or
// SLURM) sets, and the training loop uses it as PyTorch's DistributedDataParallel does: rank 0's
// parameters broadcast at the start, gradients averaged by c10d::Reducer during backward
// (bucketed, overlapped with the rest of backward), the same update on every rank.
//
// This header names no c10d type: the one translation unit that includes c10d's headers (and
// Gloo's, which LibTorch's wheel lacks; Debian's libgloo-dev provides them) is distributed.cpp.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dyt {

// Who this process is in the job, from the launcher's environment.
struct DistEnv {
  int64_t rank = 0, world = 1;              // RANK, WORLD_SIZE
  int64_t local_rank = 0, local_world = 1;  // LOCAL_RANK, LOCAL_WORLD_SIZE (the GPU this process uses)
  std::string master_addr;                  // MASTER_ADDR
  int64_t master_port = 0;                  // MASTER_PORT
  std::string launcher;                     // "torchrun", "env" (RANK set by hand), "slurm", "" (none)
  bool agent_store = false;                 // torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE)
  int64_t restart = 0;                      // TORCHELASTIC_RESTART_COUNT: the job's attempt
  bool distributed() const { return world > 1; }
  std::string describe() const;  // "rank 1/2 (local 1/2, torchrun, 127.0.0.1:29500)"
};

// Reads RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE/MASTER_ADDR/MASTER_PORT (torchrun, or set by
// hand), else SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID/SLURM_NTASKS_PER_NODE (srun; MASTER_ADDR
// must be exported, MASTER_PORT defaults to 29500). A ConfigError names the variable at fault.
// `getenv` is replaceable for tests.
DistEnv read_dist_env(const std::function<const char*(const char*)>& getenv = nullptr);

// Whether this build can open a process group (it was compiled with Gloo's headers; NCCL too
// when it has CUDA), in words for `dyt env`.
std::string distributed_support();

// The job's process group, opened from the environment. Collectives are called by every rank in
// the same order (as in PyTorch); tensors live on the group's device (cuda:LOCAL_RANK for NCCL,
// the CPU for Gloo).
class Distributed {
 public:
  // Connects to the store (torchrun's agent, or rank 0's) and creates the process group; waits
  // for every rank up to `timeout`, which is also the collectives' timeout.
  Distributed(const DistEnv& env, const torch::Device& device, std::chrono::milliseconds timeout);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int64_t rank() const { return env_.rank; }
  int64_t world() const { return env_.world; }
  const DistEnv& env() const { return env_; }
  const torch::Device& device() const { return device_; }
  std::string backend() const;  // "gloo" | "nccl"

  // Rank 0's values into every rank's tensors, in place (one flattened broadcast per dtype).
  void broadcast(const std::vector<torch::Tensor>& tensors);
  // Sums over ranks, in place.
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors);
  // Element-wise sums of small vectors of numbers over the ranks (exact for counts below 2^53).
  std::vector<double> sum(const std::vector<double>& values);
  // Rank 0's text on every rank (through the store).
  std::string broadcast_text(const std::string& text);
  // Every rank's text, by rank (through the store).
  std::vector<std::string> gather_text(const std::string& text);
  void barrier();

  // Refuses parameters whose count, shapes or dtypes differ from rank 0's (c10d's check).
  void verify_same_parameters(const std::vector<torch::Tensor>& params);

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  DistEnv env_;
  torch::Device device_;
  std::unique_ptr<Impl> impl_;
  int64_t seq_ = 0;  // store keys of the text exchanges
};

// PyTorch DDP's gradient averaging: c10d::Reducer over the parameters that train. Gradients are
// copied into buckets (first 1 MiB, then `bucket_mb`) in reverse parameter order, each bucket's
// all-reduce launched as soon as its gradients are ready during backward; backward returns with
// every parameter's .grad averaged over the ranks.
class GradientReducer {
 public:
  GradientReducer(Distributed& dist, std::vector<torch::Tensor> params, std::vector<std::string> names,
                  double bucket_mb = 25.0);
  ~GradientReducer();
  // Call before the backward whose gradients are to be averaged (the last micro-batch of an
  // update). A backward without it accumulates locally, as DDP's no_sync().
  void prepare_for_backward();
  int64_t buckets() const { return buckets_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t buckets_ = 0;
};

}  // namespace dyt
