// The process group and DDP's reducer on LibTorch's c10d (core/distributed.h). The only
// translation unit that includes c10d's headers.
#include "core/distributed.h"

#include <fmt/format.h>

#include <cstdlib>
#include <map>

#include "core/errors.h"

#if defined(USE_C10D_GLOO)
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#if defined(USE_C10D_NCCL)
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace dyt {

namespace {

int64_t env_int(const std::function<const char*(const char*)>& get, const char* name, int64_t fallback, bool required) {
  const char* v = get(name);
  if (!v || !*v) {
    if (required)
      throw ConfigError(Origin{"environment"}, name,
                        fmt::format("{} is not set; launch with torchrun (it sets RANK, WORLD_SIZE, LOCAL_RANK, "
                                    "MASTER_ADDR, MASTER_PORT) or set it by hand",
                                    name));
    return fallback;
  }
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (end == v || (*end && *end != '(')) {  // SLURM writes "8(x2)" for 8 tasks on each of 2 nodes
    throw ConfigError(Origin{"environment"}, name, fmt::format("'{}' is not an integer", v));
  }
  return x;
}

}  // namespace

std::string DistEnv::describe() const {
  if (!distributed()) return "one process";
  return fmt::format("rank {}/{} (local {}/{}, {}, {}:{})", rank, world, local_rank, local_world,
                     launcher.empty() ? "env" : launcher, master_addr, master_port);
}

DistEnv read_dist_env(const std::function<const char*(const char*)>& getenv_fn) {
  const std::function<const char*(const char*)> get = getenv_fn ? getenv_fn : [](const char* n) { return std::getenv(n); };
  DistEnv e;
  auto has = [&](const char* n) { return get(n) && *get(n); };
  if (has("RANK") || has("WORLD_SIZE")) {
    e.launcher = has("TORCHELASTIC_RUN_ID") ? "torchrun" : "env";
    e.rank = env_int(get, "RANK", 0, true);
    e.world = env_int(get, "WORLD_SIZE", 1, true);
    e.local_rank = env_int(get, "LOCAL_RANK", e.rank, false);
    e.local_world = env_int(get, "LOCAL_WORLD_SIZE", e.world, false);
    e.agent_store = get("TORCHELASTIC_USE_AGENT_STORE") && std::string(get("TORCHELASTIC_USE_AGENT_STORE")) == "True";
    e.restart = env_int(get, "TORCHELASTIC_RESTART_COUNT", 0, false);
  } else if (has("SLURM_PROCID") && has("SLURM_NTASKS") && env_int(get, "SLURM_NTASKS", 1, true) > 1) {
    e.launcher = "slurm";
    e.rank = env_int(get, "SLURM_PROCID", 0, true);
    e.world = env_int(get, "SLURM_NTASKS", 1, true);
    e.local_rank = env_int(get, "SLURM_LOCALID", 0, false);
    e.local_world = env_int(get, "SLURM_NTASKS_PER_NODE", e.world, false);
    e.restart = env_int(get, "SLURM_RESTART_COUNT", 0, false);
  } else {
    return e;  // one process
  }
  if (e.world < 1) throw ConfigError(Origin{"environment"}, "WORLD_SIZE", fmt::format("{} is not a world size (>= 1)", e.world));
  if (e.rank < 0 || e.rank >= e.world)
    throw ConfigError(Origin{"environment"}, e.launcher == "slurm" ? "SLURM_PROCID" : "RANK",
                      fmt::format("rank {} is outside 0..{} (WORLD_SIZE {})", e.rank, e.world - 1, e.world));
  if (e.local_rank < 0 || e.local_rank >= std::max<int64_t>(e.local_world, 1))
    throw ConfigError(Origin{"environment"}, e.launcher == "slurm" ? "SLURM_LOCALID" : "LOCAL_RANK",
                      fmt::format("local rank {} is outside 0..{}", e.local_rank, e.local_world - 1));
  if (!e.distributed()) return e;
  if (!has("MASTER_ADDR"))
    throw ConfigError(Origin{"environment"}, "MASTER_ADDR",
                      e.launcher == "slurm"
                          ? "MASTER_ADDR is not set; under srun export it first, e.g. export MASTER_ADDR=$(scontrol show "
                            "hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)"
                          : "MASTER_ADDR is not set (RANK and WORLD_SIZE are); launch with torchrun or set it");
  e.master_addr = get("MASTER_ADDR");
  e.master_port = env_int(get, "MASTER_PORT", 29500, e.launcher != "slurm");
  if (e.master_port <= 0 || e.master_port > 65535)
    throw ConfigError(Origin{"environment"}, "MASTER_PORT", fmt::format("{} is not a TCP port", e.master_port));
  return e;
}

#if defined(USE_C10D_GLOO)

std::string distributed_support() {
#if defined(USE_C10D_NCCL)
  return "c10d: gloo (CPU), nccl (CUDA)";
#else
  return "c10d: gloo (CPU); no NCCL in this build";
#endif
}

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  std::string backend;
};

Distributed::Distributed(const DistEnv& env, const torch::Device& device, std::chrono::milliseconds timeout)
    : env_(env), device_(device), impl_(std::make_unique<Impl>()) {
  // The store: torchrun's agent already serves one at MASTER_ADDR:MASTER_PORT; otherwise rank 0
  // serves it. Keys live under the attempt, so a restarted job never reads a failed one's.
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = !env.agent_store && env.rank == 0;
  so.numWorkers = static_cast<size_t>(env.world);
  so.waitWorkers = false;
  so.timeout = timeout;
  auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  impl_->store = c10::make_intrusive<c10d::PrefixStore>(fmt::format("dyt/attempt_{}", env.restart), tcp);
  const int rank = static_cast<int>(env.rank), world = static_cast<int>(env.world);
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(impl_->store, rank, world);
  if (device.is_cuda()) {
#if defined(USE_C10D_NCCL)
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device.index()));
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout;
    auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
        c10::make_intrusive<c10d::PrefixStore>("nccl", impl_->store), rank, world, o);
    pg->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
    pg->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, nccl);
    impl_->backend = "nccl";
#else
    throw ConfigError(Origin{"environment"}, "run.device",
                      "this dyt was built without NCCL (no nccl.h at configure time): multi-GPU training needs it; "
                      "rebuild with the nvidia-nccl headers of the torch wheel, or train on --device cpu (Gloo)");
#endif
  } else {
    auto o = c10d::ProcessGroupGloo::Options::create(timeout);
    o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", impl_->store),
                                                            rank, world, o);
    pg->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
    pg->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
    impl_->backend = "gloo";
  }
  impl_->pg = pg;
}

Distributed::~Distributed() = default;

std::string Distributed::backend() const { return impl_->backend; }

namespace {
// Applies `op` to one flat buffer per dtype holding all the tensors, then copies the results back.
template <class Op>
void flat_by_dtype(const std::vector<torch::Tensor>& tensors, const torch::Device& device, Op op) {
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by;
  for (const auto& t : tensors)
    if (t.defined() && t.numel() > 0) by[t.scalar_type()].push_back(t);
  torch::NoGradGuard ng;
  for (auto& [dtype, ts] : by) {
    std::vector<torch::Tensor> flat;
    for (const auto& t : ts) flat.push_back(t.detach().reshape({-1}).to(device));
    torch::Tensor buf = torch::cat(flat);
    op(buf);
    int64_t off = 0;
    for (auto& t : ts) {
      const int64_t n = t.numel();
      t.detach().copy_(buf.slice(0, off, off + n).view(t.sizes()));
      off += n;
    }
  }
}
}  // namespace

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors) {
  flat_by_dtype(tensors, device_, [&](torch::Tensor& buf) {
    std::vector<torch::Tensor> v{buf};
    c10d::BroadcastOptions o;
    o.rootRank = 0;
    impl_->pg->broadcast(v, o)->wait();
  });
}

void Distributed::all_reduce_sum(const std::vector<torch::Tensor>& tensors) {
  flat_by_dtype(tensors, device_, [&](torch::Tensor& buf) {
    std::vector<torch::Tensor> v{buf};
    impl_->pg->allreduce(v)->wait();
  });
}

std::vector<double> Distributed::sum(const std::vector<double>& values) {
  if (values.empty()) return {};
  torch::Tensor t = torch::tensor(values, torch::kDouble).to(device_);
  std::vector<torch::Tensor> v{t};
  impl_->pg->allreduce(v)->wait();
  t = t.cpu();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

std::string Distributed::broadcast_text(const std::string& text) {
  const std::string key = fmt::format("text/{}", seq_++);
  if (env_.rank == 0) impl_->store->set(key, std::vector<uint8_t>(text.begin(), text.end()));
  const std::vector<uint8_t> got = impl_->store->get(key);
  return std::string(got.begin(), got.end());
}

std::vector<std::string> Distributed::gather_text(const std::string& text) {
  const std::string key = fmt::format("gather/{}", seq_++);
  impl_->store->set(fmt::format("{}/{}", key, env_.rank), std::vector<uint8_t>(text.begin(), text.end()));
  std::vector<std::string> out;
  for (int64_t r = 0; r < env_.world; ++r) {
    const std::vector<uint8_t> got = impl_->store->get(fmt::format("{}/{}", key, r));
    out.emplace_back(got.begin(), got.end());
  }
  return out;
}

void Distributed::barrier() {
  // A one-element all-reduce is a barrier on every backend (and needs no device id).
  sum({1.0});
}

void Distributed::verify_same_parameters(const std::vector<torch::Tensor>& params) {
  c10d::verify_params_across_processes(impl_->pg, params, std::nullopt);
}

struct GradientReducer::Impl {
  std::unique_ptr<c10d::Reducer> reducer;
};

GradientReducer::GradientReducer(Distributed& dist, std::vector<torch::Tensor> params, std::vector<std::string> names,
                                 double bucket_mb)
    : impl_(std::make_unique<Impl>()) {
  // As DistributedDataParallel: buckets assigned by size over the parameters in reverse order
  // (the order backward produces their gradients), a small first bucket so the first all-reduce
  // starts early.
  const size_t cap = static_cast<size_t>(bucket_mb * 1024 * 1024);
  const size_t first = std::min<size_t>(c10d::kDefaultFirstBucketBytes, cap);
  std::vector<bool> sparse(params.size(), false);
  auto [buckets, limits] = c10d::compute_bucket_assignment_by_size(params, {first, cap}, sparse);
  std::reverse(buckets.begin(), buckets.end());
  std::vector<int64_t> per_bucket(limits.rbegin(), limits.rend());
  std::unordered_map<size_t, std::string> param_names;
  for (size_t i = 0; i < names.size(); ++i) param_names[i] = names[i];
  buckets_ = static_cast<int64_t>(buckets.size());
  impl_->reducer = std::make_unique<c10d::Reducer>(std::move(params), std::move(buckets), dist.impl().pg, sparse,
                                                   static_cast<int64_t>(cap), /*find_unused_parameters=*/false,
                                                   /*gradient_as_bucket_view=*/false, param_names,
                                                   static_cast<int64_t>(first), /*skip_all_reduce_unused_params=*/false,
                                                   /*use_python_reducer=*/false, per_bucket);
}

GradientReducer::~GradientReducer() = default;

void GradientReducer::prepare_for_backward() { impl_->reducer->prepare_for_backward({}); }

#else  // built without Gloo's headers: one process only

std::string distributed_support() { return "none (built without Gloo's headers: apt-get install libgloo-dev and rebuild)"; }

struct Distributed::Impl {};
Distributed::Distributed(const DistEnv& env, const torch::Device& device, std::chrono::milliseconds)
    : env_(env), device_(device) {
  throw ConfigError(Origin{"environment"}, "WORLD_SIZE",
                    fmt::format("WORLD_SIZE is {} but this dyt was built without c10d's Gloo headers; install "
                                "libgloo-dev (scripts/setup.sh does) and rebuild, or run one process",
                                env.world));
}
Distributed::~Distributed() = default;
std::string Distributed::backend() const { return "none"; }
void Distributed::broadcast(const std::vector<torch::Tensor>&) {}
void Distributed::all_reduce_sum(const std::vector<torch::Tensor>&) {}
std::vector<double> Distributed::sum(const std::vector<double>& v) { return v; }
std::string Distributed::broadcast_text(const std::string& t) { return t; }
std::vector<std::string> Distributed::gather_text(const std::string& t) { return {t}; }
void Distributed::barrier() {}
void Distributed::verify_same_parameters(const std::vector<torch::Tensor>&) {}
struct GradientReducer::Impl {};
GradientReducer::GradientReducer(Distributed&, std::vector<torch::Tensor>, std::vector<std::string>, double) {}
GradientReducer::~GradientReducer() = default;
void GradientReducer::prepare_for_backward() {}

#endif

}  // namespace dyt
