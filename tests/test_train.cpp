// Training machinery against independent references: the schedule's formula, PyTorch's AdamW
// update written out by hand, safetensors bytes, checkpoints and metrics files.
#include <gtest/gtest.h>
#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <sys/resource.h>

#include <cmath>
#include <limits>
#include <map>

#include "models/vit.h"
#include "core/cpu_allocator.h"
#include "core/distributed.h"
#include "core/errors.h"
#include "core/io.h"
#include "core/tensorboard.h"
#include "runner/train/components.h"
#include "test_util.h"

using namespace dyt;
using dyt::test::TempDir;
using torch::Tensor;

TEST(Schedule, WarmupThenCosineToMinLr) {
  ScheduleOptions s;
  s.epochs = 10, s.warmup_epochs = 2, s.min_lr = 1e-5;
  EXPECT_DOUBLE_EQ(scheduled_lr(s, 1e-3, 0.0), 0.0);
  EXPECT_DOUBLE_EQ(scheduled_lr(s, 1e-3, 1.0), 5e-4);
  EXPECT_DOUBLE_EQ(scheduled_lr(s, 1e-3, 2.0), 1e-3);
  EXPECT_NEAR(scheduled_lr(s, 1e-3, 6.0), 1e-5 + (1e-3 - 1e-5) * 0.5, 1e-15);  // half way: cos(pi/2) = 0
  EXPECT_NEAR(scheduled_lr(s, 1e-3, 10.0), 1e-5, 1e-15);
  s.kind = "linear";
  EXPECT_NEAR(scheduled_lr(s, 1e-3, 6.0), 1e-5 + (1e-3 - 1e-5) * 0.5, 1e-15);
  s.kind = "constant";
  EXPECT_DOUBLE_EQ(scheduled_lr(s, 1e-3, 9.0), 1e-3);
}

TEST(Optimizer, AdamWMatchesTheWrittenOutUpdate) {
  OptimOptions o;
  o.lr = 0.1, o.betas = {0.9, 0.99}, o.eps = 1e-8;
  Tensor p = torch::tensor({1.0, -2.0}, torch::kDouble).requires_grad_(true);
  ParamGroup g;
  g.names = {"w"}, g.params = {p}, g.weight_decay = 0.1;
  Optimizer opt(o, {g});
  double w[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
  const double grads[2][2] = {{0.5, -1.0}, {0.25, 3.0}};
  for (int t = 1; t <= 2; ++t) {
    p.mutable_grad() = torch::tensor({grads[t - 1][0], grads[t - 1][1]}, torch::kDouble);
    opt.step(0.1);
    for (int i = 0; i < 2; ++i) {
      const double gr = grads[t - 1][i];
      w[i] *= 1 - 0.1 * 0.1;
      m[i] = 0.9 * m[i] + 0.1 * gr;
      v[i] = 0.99 * v[i] + 0.01 * gr * gr;
      const double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.99, t));
      w[i] -= 0.1 * mh / (std::sqrt(vh) + 1e-8);
      EXPECT_NEAR(p[i].item<double>(), w[i], 1e-12) << "step " << t << " element " << i;
    }
  }
}

TEST(Optimizer, FusedAdamWKernelGivesTheSameUpdateAsThePerParameterOps) {
  // The GPU path (ATen's fused multi-tensor AdamW) against the per-parameter update, on CPU
  // where ATen has the same kernel: two groups (decay / no decay, different lr scales), a
  // parameter without gradient, three steps.
  OptimOptions o;
  o.betas = {0.9, 0.95};
  auto make = [] {
    torch::manual_seed(3);
    std::vector<Tensor> ps = {torch::randn({4, 3}), torch::randn({3}), torch::randn({2})};
    for (auto& p : ps) p.requires_grad_(true);
    return ps;
  };
  auto groups = [](const std::vector<Tensor>& ps) {
    ParamGroup a, b;
    a.names = {"w"}, a.params = {ps[0]}, a.weight_decay = 0.05, a.lr_scale = 1.0;
    b.names = {"b", "unused"}, b.params = {ps[1], ps[2]}, b.weight_decay = 0.0, b.lr_scale = 0.5;
    return std::vector<ParamGroup>{a, b};
  };
  auto ref = make(), fused = make();
  Optimizer o_ref(o, groups(ref)), o_fused(o, groups(fused));
  o_fused.force_fused(true);
  for (int t = 0; t < 3; ++t) {
    torch::manual_seed(100 + t);
    for (int i = 0; i < 2; ++i) {
      Tensor g = torch::randn(ref[i].sizes());
      ref[i].mutable_grad() = g.clone();
      fused[i].mutable_grad() = g.clone();
    }
    o_ref.step(1e-2);
    o_fused.step(1e-2);
  }
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::allclose(ref[i], fused[i], 1e-6, 1e-7)) << "parameter " << i;
  EXPECT_TRUE(torch::equal(ref[2], fused[2]));  // no gradient: untouched by both
  EXPECT_FALSE(torch::equal(ref[0], make()[0]));  // and the others did move
}

TEST(Optimizer, ClipGradNormScalesToTheLimit) {
  Tensor a = torch::zeros({2}, torch::requires_grad()), b = torch::zeros({1}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(grad_norm_and_clip({a, b}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(grad_norm_and_clip({a, b}, 0.0), 1.0, 1e-5);
}

TEST(SafeTensors, RoundTripAndHeaderLayout) {
  TempDir d;
  Tensor f = torch::randn({3, 4}), h = torch::randn({5}).to(torch::kBFloat16), i = torch::arange(6).view({2, 3});
  write_safetensors(d / "t.safetensors", {{"a.weight", f}, {"b", h}, {"idx", i}}, {{"format", "pt"}});
  std::string bytes = read_text(d / "t.safetensors");
  uint64_t n = 0;
  for (int k = 0; k < 8; ++k) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[k])) << (8 * k);
  EXPECT_EQ(n % 8, 0u);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["a.weight"]["dtype"], "F32");
  EXPECT_EQ(header["b"]["dtype"], "BF16");
  EXPECT_EQ(header["idx"]["shape"], nlohmann::json({2, 3}));
  EXPECT_EQ(header["__metadata__"]["format"], "pt");
  EXPECT_EQ(bytes.size(), 8 + n + 12 * 4 + 5 * 2 + 6 * 8);
  SafeTensorsFile r = read_safetensors(d / "t.safetensors");
  EXPECT_TRUE(torch::equal(*r.find("a.weight"), f));
  EXPECT_TRUE(torch::equal(*r.find("b"), h));
  EXPECT_TRUE(torch::equal(*r.find("idx"), i));
  dyt::test::write_file(d / "cut.safetensors", bytes.substr(0, bytes.size() - 10));
  EXPECT_THROW(read_safetensors(d / "cut.safetensors"), IoError);
}

TEST(Checkpoint, RestoresModelOptimizerRngAndKeepsTheNewest) {
  TempDir d;
  ViTOptions o;
  o.img_size = 8, o.patch_size = 4, o.in_chans = 1, o.num_classes = 3, o.embed_dim = 16, o.depth = 1, o.num_heads = 2;
  auto a = std::make_shared<ViTImpl>(o);
  OptimOptions oo;
  oo.lr = 1e-3;
  Optimizer opt(oo, make_param_groups(*a, 0.05, 1.0));
  a->forward(torch::randn({2, 1, 8, 8})).sum().backward();
  opt.step(1e-3);
  TrainState s;
  s.step = 7, s.epoch = 1, s.batch = 3, s.extra = {{"best_top1", 12.5}};
  torch::manual_seed(123);
  for (int64_t step : {5, 6, 7}) {
    s.step = step;
    save_checkpoint(d.path(), *a, nullptr, opt, s, 2);
  }
  Tensor expect_rand = torch::rand({4});  // what the generator gives after the last save
  EXPECT_FALSE(std::filesystem::exists(d / "checkpoints/step_000000005.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(d / "checkpoints/step_000000007.safetensors"));

  torch::manual_seed(999);
  auto b = std::make_shared<ViTImpl>(o);
  Optimizer opt_b(oo, make_param_groups(*b, 0.05, 1.0));
  TrainState t;
  ASSERT_TRUE(load_latest_checkpoint(d.path(), *b, nullptr, opt_b, t));
  EXPECT_EQ(t.step, 7);
  EXPECT_EQ(t.batch, 3);
  EXPECT_EQ(t.extra["best_top1"], 12.5);
  EXPECT_EQ(opt_b.steps(), 1);
  for (const auto& kv : a->named_parameters()) EXPECT_TRUE(torch::equal(kv.value(), b->named_parameters()[kv.key()])) << kv.key();
  EXPECT_TRUE(torch::equal(torch::rand({4}), expect_rand));  // RNG state restored
}

TEST(Metrics, KeepFirstDropsLinesAfterTheCheckpoint) {
  TempDir d;
  MetricsLog m(d / "metrics.jsonl");
  for (int i = 0; i < 5; ++i) m.write({{"step", i}});
  EXPECT_EQ(m.lines(), 5);
  MetricsLog resumed(d / "metrics.jsonl");
  resumed.keep_first(3);
  auto lines = read_jsonl(d / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2]["step"], 2);
  EXPECT_EQ(resumed.lines(), 3);
  // A torn last line (crash while appending) is ignored by readers.
  dyt::test::write_file(d / "torn.jsonl", "{\"step\": 1}\n{\"step\": 2, \"lo");
  EXPECT_EQ(read_jsonl(d / "torn.jsonl").size(), 1u);
}

TEST(Io, AtomicWriteLeavesNoTemporaryFiles) {
  TempDir d;
  atomic_write(d / "sub" / "x.txt", "hello");
  atomic_write(d / "sub" / "x.txt", "world");
  EXPECT_EQ(read_text(d / "sub" / "x.txt"), "world");
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(d / "sub")) files += 1, (void)e;
  EXPECT_EQ(files, 1);
}

// ---- the launcher's environment (core/distributed.h) ----------------------------------------------
namespace {
dyt::DistEnv env_from(std::map<std::string, std::string> vars) {
  return dyt::read_dist_env([vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}
std::string key_of_error(std::map<std::string, std::string> vars) {
  try {
    env_from(std::move(vars));
  } catch (const dyt::ConfigError& e) {
    return e.problems().at(0).key;
  }
  return "(no error)";
}
}  // namespace

TEST(DistEnv, NoLauncherIsOneProcess) {
  auto e = env_from({});
  EXPECT_FALSE(e.distributed());
  EXPECT_EQ(e.world, 1);
  EXPECT_EQ(e.launcher, "");
}

TEST(DistEnv, ReadsTorchrunsVariables) {
  auto e = env_from({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                     {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29400"}, {"TORCHELASTIC_RUN_ID", "x"},
                     {"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_TRUE(e.distributed());
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world, 2);
  EXPECT_EQ(e.master_addr, "node0");
  EXPECT_EQ(e.master_port, 29400);
  EXPECT_EQ(e.launcher, "torchrun");
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(e.restart, 2);
}

TEST(DistEnv, ReadsSlurmsVariablesUnderSrun) {
  auto e = env_from({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "5"},
                     {"SLURM_NTASKS_PER_NODE", "8(x2)"}, {"MASTER_ADDR", "gpu-a01"}});
  EXPECT_EQ(e.launcher, "slurm");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world, 16);
  EXPECT_EQ(e.local_world, 8);
  EXPECT_EQ(e.master_port, 29500);  // the default under srun
  EXPECT_FALSE(e.agent_store);      // rank 0 serves the store
  // One task under srun is one process, whatever else is set.
  EXPECT_FALSE(env_from({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}).distributed());
}

TEST(DistEnv, BadEnvironmentsNameTheVariable) {
  EXPECT_EQ(key_of_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}), "RANK");
  EXPECT_EQ(key_of_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}}), "MASTER_ADDR");
  EXPECT_EQ(key_of_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}}), "MASTER_PORT");
  EXPECT_EQ(key_of_error({{"RANK", "0"}, {"WORLD_SIZE", "two"}}), "WORLD_SIZE");
  EXPECT_EQ(key_of_error({{"RANK", "0"}}), "WORLD_SIZE");
  EXPECT_EQ(key_of_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "3"}, {"LOCAL_WORLD_SIZE", "2"},
                          {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}),
            "LOCAL_RANK");
  EXPECT_EQ(key_of_error({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}), "MASTER_ADDR");
}

// ---- precision (runner/train/components.h) ---------------------------------------------------------
TEST(Precision, ResolvesEachSettingPerDevice) {
  auto cpu = dyt::resolve_precision("auto", torch::kCPU);
  EXPECT_EQ(cpu.name, "fp32");
  EXPECT_FALSE(cpu.autocast);
  auto gpu = dyt::resolve_precision("auto", torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(gpu.name, "bf16");
  EXPECT_TRUE(gpu.autocast && gpu.dtype == at::kBFloat16);
  auto tf32 = dyt::resolve_precision("tf32", torch::Device(torch::kCUDA, 0));
  EXPECT_TRUE(tf32.tf32 && !tf32.autocast);
  EXPECT_EQ(dyt::resolve_precision("tf32", torch::kCPU).name, "fp32");  // TF32 is a GPU matmul mode
  auto fp16 = dyt::resolve_precision("fp16", torch::kCPU);
  EXPECT_TRUE(fp16.autocast && fp16.loss_scaling && fp16.dtype == at::kHalf);
}

// The CPU 16-bit warning: worded from the measured ratio, silent for fp32 and small ratios; the
// measurement itself returns a positive ratio for both 16-bit types and draws no random numbers
// (a run's random stream must not depend on it).
TEST(Precision, CpuWarnsWhere16BitMatrixProductsAreSlow) {
  const auto fp16 = dyt::resolve_precision("fp16", torch::kCPU), bf16 = dyt::resolve_precision("bf16", torch::kCPU);
  const std::string w = dyt::cpu_precision_warning(fp16, 33.4);
  EXPECT_NE(w.find("fp16 autocast on this CPU"), std::string::npos) << w;
  EXPECT_NE(w.find("took 33x the fp32 one"), std::string::npos) << w;
  EXPECT_NE(w.find("--set train.precision=fp32"), std::string::npos) << w;
  EXPECT_NE(dyt::cpu_precision_warning(bf16, 21.0).find("bf16 matrix product"), std::string::npos);
  EXPECT_EQ(dyt::cpu_precision_warning(bf16, 2.9), "");
  EXPECT_EQ(dyt::cpu_precision_warning(bf16, std::nan("")), "");
  EXPECT_EQ(dyt::cpu_precision_warning(dyt::resolve_precision("fp32", torch::kCPU), 50.0), "");
  torch::manual_seed(7);
  const Tensor before = torch::randn({4});
  torch::manual_seed(7);
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    const double r = dyt::cpu_matmul_slowdown(dt);
    EXPECT_TRUE(std::isfinite(r) && r > 0) << r;
    std::printf("%s product: %.1fx the fp32 one on this CPU\n", c10::toString(dt), r);
  }
  EXPECT_TRUE(torch::equal(torch::randn({4}), before));
}

// GradScaler's rule: gradients divided by the scale; an inf/NaN skips the update and halves the
// scale; 2000 clean updates double it; the state survives a checkpoint.
TEST(Precision, LossScalerUnscalesSkipsOverflowsAndGrows) {
  dyt::LossScaler s(true);
  EXPECT_EQ(s.scale(), 65536.0);
  torch::Tensor p = torch::zeros({3}, torch::requires_grad());
  p.mutable_grad() = torch::tensor({65536.0f, -131072.0f, 0.0f});
  EXPECT_FALSE(s.unscale({p}));
  EXPECT_TRUE(torch::allclose(p.grad(), torch::tensor({1.0f, -2.0f, 0.0f})));
  p.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::infinity(), 0.0f});
  const bool inf = s.unscale({p});
  EXPECT_TRUE(inf);
  s.update(inf);
  EXPECT_EQ(s.scale(), 32768.0);
  for (int i = 0; i < 1999; ++i) s.update(false);
  EXPECT_EQ(s.scale(), 32768.0);
  s.update(false);
  EXPECT_EQ(s.scale(), 65536.0);
  nlohmann::json extra;
  s.update(false);
  s.save(extra);
  dyt::LossScaler r(true);
  r.load(extra);
  EXPECT_EQ(r.scale(), 65536.0);
  for (int i = 0; i < 1999; ++i) r.update(false);
  EXPECT_EQ(r.scale(), 131072.0);  // the one clean update before saving counted
  EXPECT_EQ(dyt::LossScaler(false).scale(), 1.0);
}

// TFRecord framing as TensorBoard reads it: CRC-32C's check value and the record masking.
TEST(TensorBoard, Crc32cAndMaskingMatchTheirDefinitions) {
  const std::string s = "123456789";
  EXPECT_EQ(dyt::crc32c(s.data(), s.size()), 0xE3069283u);  // the CRC-32C check value (RFC 3720)
  const uint32_t c = 0xE3069283u;
  EXPECT_EQ(dyt::masked_crc32c(s.data(), s.size()), ((c >> 15) | (c << 17)) + 0xa282ead8u);
  EXPECT_EQ(dyt::crc32c("", 0), 0u);
}

// ---- the caching CPU allocator (core/cpu_allocator.h) ---------------------------------------------
namespace {
int64_t minor_faults_now() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}
void touch(void* p, size_t n) {  // one write per 4 KiB page
  for (size_t i = 0; i < n; i += 4096) static_cast<volatile char*>(p)[i] = 1;
}
}  // namespace

TEST(CpuAllocator, ReusesAFreedBlockWithoutFaultingItsPagesAgain) {
  dyt::CachingCpuAllocator a(c10::GetDefaultCPUAllocator(), size_t(1) << 30);
  void* first = nullptr;
  {
    c10::DataPtr p = a.allocate(8 << 20);
    first = p.get();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % dyt::CachingCpuAllocator::kGranule, 0u);
    touch(first, 8 << 20);
  }
  EXPECT_EQ(a.stats().cached, size_t(8) << 20);
  c10::DataPtr q = a.allocate((7 << 20) + 5);  // rounds up to the same 8 MiB block
  EXPECT_EQ(q.get(), first);
  const int64_t f0 = minor_faults_now();
  touch(q.get(), 7 << 20);
  EXPECT_EQ(minor_faults_now() - f0, 0) << "a reused block's pages must still be mapped";
  const auto s = a.stats();
  EXPECT_EQ(s.maps, 1);
  EXPECT_EQ(s.reuses, 1);
  EXPECT_EQ(s.cached, 0u);
  EXPECT_EQ(s.mapped, size_t(8) << 20);
}

TEST(CpuAllocator, SmallRequestsGoToTheFallbackAndTheCacheStaysUnderItsLimit) {
  dyt::CachingCpuAllocator a(c10::GetDefaultCPUAllocator(), size_t(5) << 20);
  { c10::DataPtr small = a.allocate(4096); ASSERT_NE(small.get(), nullptr); }
  EXPECT_EQ(a.stats().maps, 0);
  {
    c10::DataPtr p4 = a.allocate(4 << 20), p6 = a.allocate(6 << 20);  // 4 + 6 MiB > 5 MiB limit
    EXPECT_EQ(a.stats().maps, 2);
  }
  auto s = a.stats();
  EXPECT_LE(s.cached, size_t(5) << 20);
  EXPECT_EQ(s.unmaps, 1);  // the largest (6 MiB) block went back to the system
  EXPECT_EQ(s.mapped, s.cached);
  c10::DataPtr big = a.allocate(16 << 20);  // larger than any cached block: a new mapping
  EXPECT_EQ(a.stats().maps, 3);
  a.empty_cache();
  EXPECT_EQ(a.stats().cached, 0u);
  EXPECT_EQ(a.stats().mapped, size_t(16) << 20);
}

// LibTorch's raw_allocate / raw_deallocate (used inside some ATen CPU kernels) need the data
// pointer to be the context; `dyt bench train` crashed on the first version, which was not.
TEST(CpuAllocator, RawAllocateAndDeallocateForLargeAndSmallBlocks) {
  dyt::CachingCpuAllocator a(c10::GetDefaultCPUAllocator(), size_t(1) << 30);
  for (size_t n : {size_t(3) << 20, size_t(100)}) {
    void* p = a.raw_allocate(n);
    ASSERT_NE(p, nullptr) << n;
    std::memset(p, 7, n);
    a.raw_deallocate(p);
  }
  EXPECT_EQ(a.stats().maps, 1);
  EXPECT_EQ(a.stats().cached, size_t(4) << 20);  // the 3 MiB block, rounded up, back in the cache
  c10::DataPtr d = a.allocate(3 << 20);
  EXPECT_EQ(d.get(), d.get_context());
  EXPECT_EQ(a.stats().reuses, 1);
}

TEST(CpuAllocator, InstalledForTorchTensorsWhichStayCorrect) {
  auto* a = dyt::install_cpu_caching_allocator();
  if (!a) GTEST_SKIP() << "DYT_CPU_ALLOCATOR=system, or an AddressSanitizer build";
  EXPECT_EQ(c10::GetAllocator(c10::DeviceType::CPU), a);
  const int64_t maps0 = a->stats().maps;
  torch::Tensor x = torch::arange(1 << 20, torch::kFloat);  // 4 MiB: from the cache's mappings
  EXPECT_EQ(reinterpret_cast<uintptr_t>(x.data_ptr()) % dyt::CachingCpuAllocator::kGranule, 0u);
  torch::Tensor y = x * 2 + 1;
  EXPECT_EQ(y[12345].item<float>(), 24691.0f);
  EXPECT_GE(a->stats().maps - maps0 + a->stats().reuses, 1);
  torch::Tensor tiny = torch::ones({16});  // stays with LibTorch's allocator
  EXPECT_EQ(tiny.sum().item<float>(), 16.0f);
}
