// Pieces every training task shares: parameter groups (no weight decay on 1-D parameters,
// layer-wise lr decay), AdamW / SGD with named state, the warm-up + cosine schedule, EMA,
// autocast, checkpoints (everything needed to resume bit-identically), metrics and progress.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "models/model.h"
#include "runner/experiment/experiment.h"
#include "core/io.h"
#include "core/tensorboard.h"

namespace dyt {

struct ParamGroup {
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;
  double weight_decay = 0.0;
  double lr_scale = 1.0;
};

// timm's param_groups_weight_decay (+ layer decay): parameters with ndim <= 1, names ending in
// ".bias" and the model's no_weight_decay() list get no decay. decay_all: every parameter decays
// (fairseq's Adam: norm gains, biases and DyT's alpha too). With layer_decay < 1 each layer id gets
// lr_scale = layer_decay^(num_layers - 1 - id).
std::vector<ParamGroup> make_param_groups(const Model& model, double weight_decay, double layer_decay,
                                          bool decay_all = false);

class Optimizer {
 public:
  Optimizer(const OptimOptions& o, std::vector<ParamGroup> groups);
  // One update with peak-relative learning rate `lr` (each group scales it by its lr_scale).
  void step(double lr);
  void zero_grad();
  int64_t steps() const { return steps_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  std::vector<NamedTensor> state() const;  // "optim.exp_avg.<param>", ...
  // The fused AdamW kernel runs for fp32 CUDA parameters; this makes CPU parameters use it too
  // (ATen has it on both), so that tests can compare it with the per-parameter update.
  void force_fused(bool on) { force_fused_ = on; }
  void load_state(const SafeTensorsFile& f);
  // The moment tensors themselves (not copies), and the step count: what a rank receives from
  // rank 0 when a data-parallel job starts or resumes.
  std::vector<torch::Tensor> state_tensors() const;
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  OptimOptions o_;
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<torch::Tensor>> m_, v_;  // per group, per parameter
  int64_t steps_ = 0;
  torch::Tensor step_t_;  // steps_ on the parameters' device, read by the fused AdamW kernel
  bool force_fused_ = false;
  // AdamW on CUDA through ATen's fused multi-tensor kernel (torch.optim.AdamW(fused=True)): one
  // launch per group instead of seven per parameter. Same update; returns false when not usable.
  bool fused_adamw_step(double lr_peak);
};

// Learning rate at a (fractional) epoch: linear warm-up from 0, then cosine/linear/constant to
// min_lr at the end of the schedule (MAE / ConvNeXt per-step form). With schedule.total_steps /
// warmup_steps set, lengths are in updates and `steps_per_epoch` converts them.
double scheduled_lr(const ScheduleOptions& s, double peak, double epoch, double steps_per_epoch = 1.0);
// Schedule length in updates.
int64_t schedule_steps(const ScheduleOptions& s, int64_t steps_per_epoch);

// Global L2 norm of the gradients; clips them to max_norm when max_norm > 0.
double grad_norm_and_clip(const std::vector<torch::Tensor>& params, double max_norm);

// ema = decay * ema + (1 - decay) * model, for parameters; buffers copied.
void update_ema(torch::nn::Module& ema, const torch::nn::Module& model, double decay);

// Parameters and buffers with their dotted names (timm / HF state-dict keys).
std::vector<NamedTensor> state_dict(const torch::nn::Module& m, const std::string& prefix = "");
// Copies tensors named prefix + <name> into the module. strict: every parameter and buffer must
// be present. Returns the names that were loaded.
std::vector<std::string> load_state_dict(torch::nn::Module& m, const SafeTensorsFile& f, const std::string& prefix,
                                         bool strict);

// train.precision as it runs on a device: autocast (bf16 or fp16), TF32 matrix multiplies, loss
// scaling. auto = bf16 on CUDA, fp32 on the CPU; tf32 = fp32 storage and accumulation with TF32
// tensor-core multiplies on CUDA (fp32 on the CPU); fp16 = fp16 autocast with a dynamic loss scale
// (torch.cuda.amp.GradScaler's rule), as MAE's and fairseq's recipes train.
struct Precision {
  std::string name = "fp32";  // what runs: fp32 | tf32 | bf16 | fp16
  bool autocast = false;
  at::ScalarType dtype = at::kBFloat16;
  bool tf32 = false, loss_scaling = false;
};
Precision resolve_precision(const std::string& setting, const torch::Device& device);
// Sets (or clears) TF32 for cuBLAS and cuDNN as `p` asks; no effect without CUDA.
void apply_matmul_precision(const Precision& p);
// On the CPU, 16-bit autocast is only as fast as the processor's 16-bit matrix products, and
// without AVX512-BF16 / AMX (bf16) or AVX512-FP16 (fp16) ATen falls back to slow loops (on Zen 1 a
// 256 x 256 product took 21x the fp32 one in bf16 and 33x in fp16). Times that product in `dt`
// and in fp32 on one thread (best of 3 after a warm-up, 0.2 s on Zen 1; no random numbers drawn)
// and returns the ratio of the two times.
double cpu_matmul_slowdown(at::ScalarType dt);
// The warning for a CPU run at precision `p` whose 16-bit products take `slowdown` x fp32's, or
// "" where there is nothing to say (no autocast, or under 3x).
std::string cpu_precision_warning(const Precision& p, double slowdown);

// Autocast while alive (no-op when disabled): bf16 unless `dtype` says otherwise.
class AutocastGuard {
 public:
  AutocastGuard(bool enabled, torch::DeviceType device, at::ScalarType dtype = at::kBFloat16);
  AutocastGuard(const Precision& p, torch::DeviceType device) : AutocastGuard(p.autocast, device, p.dtype) {}
  ~AutocastGuard();

 private:
  bool enabled_;
  torch::DeviceType device_;
  bool prev_;
};

// Dynamic loss scaling for fp16 (GradScaler's defaults: 2^16 to start, halved on an overflow and
// the update skipped, doubled after 2000 updates without one).
class LossScaler {
 public:
  explicit LossScaler(bool enabled) : enabled_(enabled) {}
  bool enabled() const { return enabled_; }
  double scale() const { return enabled_ ? scale_ : 1.0; }
  // Divides every gradient by the scale; true when one is not finite (skip this update).
  bool unscale(const std::vector<torch::Tensor>& params);
  void update(bool found_inf);
  // In the checkpoint (TrainState.extra), so that a resumed run scales as the uninterrupted one.
  void save(nlohmann::json& extra) const;
  void load(const nlohmann::json& extra);

 private:
  bool enabled_;
  double scale_ = 65536.0;
  int64_t good_steps_ = 0;
};

struct TrainState {
  int64_t step = 0;         // optimizer steps done
  int64_t epoch = 0;        // current epoch
  int64_t batch = 0;        // batches of `epoch` consumed
  double wall_s = 0.0;      // training time before this process
  int64_t metrics_lines = 0;  // lines of metrics.jsonl that belong to this state
  nlohmann::json extra = nlohmann::json::object();  // task-specific (best metrics, ...)
};

// <dir>/checkpoints/step_<N>.safetensors: model, EMA, optimizer, RNG states and TrainState in
// the metadata. Written atomically; only the newest `keep` are kept.
void save_checkpoint(const std::filesystem::path& dir, const torch::nn::Module& model, const torch::nn::Module* ema,
                     const Optimizer& opt, const TrainState& state, int64_t keep);
// Loads the newest readable checkpoint; false when there is none.
bool load_latest_checkpoint(const std::filesystem::path& dir, torch::nn::Module& model, torch::nn::Module* ema,
                            Optimizer& opt, TrainState& state, std::string* loaded_from = nullptr);

// metrics.jsonl: one JSON object per line. A checkpoint records how many lines it covers, so
// a resumed run drops the lines of the work it redoes and the file never holds duplicates.
// With a TensorBoard writer attached, every line is mirrored as scalars: <split>/<key> at the
// line's step (train/loss, val/top1, ...; norms lines as alpha/<layer> and input_std/<layer>).
class MetricsLog {
 public:
  explicit MetricsLog(std::filesystem::path path);
  ~MetricsLog();
  void write(const nlohmann::json& j, bool sync = false);
  // replay_from >= 0: first mirrors the lines already in the file whose step is at least that.
  void attach_tensorboard(std::unique_ptr<EventWriter> tb, int64_t replay_from = -1);
  // Keeps the first `lines` lines (resume), or none (fresh start).
  void keep_first(int64_t lines);
  int64_t lines() const { return lines_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int64_t lines_ = 0;
  std::unique_ptr<EventWriter> tb_;
  void mirror(const nlohmann::json& j);
};

// A live status line on a terminal (\r-updated), plain lines every `plain_every_s` otherwise.
class Progress {
 public:
  Progress(std::string label, int64_t total_steps, int64_t start_step);
  ~Progress();
  void update(int64_t step, const std::string& fields);
  void line(const std::string& text);  // a permanent line (epoch results, messages)
  void finish();
  // Also appends what the terminal shows to `path` (the run's log.txt): every permanent line, and
  // the progress line every 30 s and at the end.
  void tee(const std::filesystem::path& path);

 private:
  std::string label_;
  int64_t total_, start_;
  bool tty_;
  std::chrono::steady_clock::time_point t0_, last_, last_file_;
  bool dirty_ = false;
  std::FILE* log_ = nullptr;
  void to_log(const std::string& text);
};

std::string format_duration(double seconds);

}  // namespace dyt
