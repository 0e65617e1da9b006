// The `dyt` subcommands. main.cpp parses the command line (CLI11) and calls these; each returns
// the process exit status. Errors are thrown and mapped to statuses in main.cpp:
//   0 success   1 internal error   2 bad command line or config   3 data error
//   4 file-system error (disk full, permissions)   130 interrupted (resume with the same command)
#pragma once

#include <string>
#include <vector>

#include "models/model.h"

namespace dyt {

int cmd_list(const std::string& what, bool markdown = false);
// docs/config_keys.md: every config key as Markdown tables (dyt list keys --markdown).
std::string config_key_reference();
int cmd_config(const std::string& experiment, const std::vector<std::string>& sets, const std::vector<std::string>& variants);
int cmd_model(const std::string& preset, const std::vector<std::string>& sets);
// The model of a preset (configs/models/<preset>.yaml or a YAML path) with `model.` overrides.
ModelPtr build_model_preset(const std::string& preset, const std::vector<std::string>& sets);
int cmd_env(const std::vector<std::string>& argv);

struct RunArgs {
  std::string experiment;
  std::vector<std::string> sets, variants;
  std::vector<int64_t> seeds;
  std::string device, out;
  int64_t max_steps = -1;  // -1: the config's
  int64_t threads = -1;
  bool force = false;
  double wait_s = 0;  // wait this long for runs locked by another process
  bool spread = false;          // torchrun/srun: one run per process instead of data parallelism
  double dist_timeout_s = 1800;  // data parallelism: store and collective timeout
  std::vector<std::string> argv;
};
int cmd_run(const RunArgs& a);

int cmd_table(const std::vector<std::string>& experiments, const std::string& out, bool paper);

struct EvalArgs {
  std::string checkpoint;         // a run folder, or a .safetensors with config.json beside it
  std::vector<std::string> sets;  // e.g. data.dataset=image_folder, data.root=...
  bool ema = false;               // the run's EMA weights (model_ema.safetensors)
  std::string device, json_out;
  int64_t threads = -1;
};
int cmd_eval(const EvalArgs& a);
int cmd_plot(const std::vector<std::string>& experiments, const std::string& out);

struct BenchNormArgs {
  std::string device = "cpu", dtype = "fp32";
  std::vector<std::string> shapes;
  std::vector<std::string> only;  // LAYER or LAYER/IMPL; empty = all
  int64_t threads = 0, repeats = 0, warmup = 0;
  std::string csv;
  bool flush = true;
};
int cmd_bench_norm(const BenchNormArgs& a);

struct BenchModelArgs {
  std::string device = "cpu", dtype = "fp32";
  std::vector<std::string> models;  // vit_b16, llama7b
  int64_t batch = 0, layers = 0, tokens = 0, repeats = 0, threads = 0;
  std::string out_dir;
};
int cmd_bench_model(const BenchModelArgs& a);

struct BenchTrainArgs {
  std::string device = "cpu", dtype = "bf16", model = "vit_b16";
  std::vector<std::string> norms;  // layernorm, dyt, dyt:aten, rmsnorm, ...
  int64_t batch = 0, steps = 0, warmup = -1, threads = 0;
  std::string out_dir;
  std::string profile_dir;  // non-empty: write a Kineto trace of 3 more steps per norm there
};
int cmd_bench_train(const BenchTrainArgs& a);

struct BenchDdpArgs {
  std::string model = "vit_fmnist", norm = "dyt";
  std::vector<std::string> sets;  // model.* overrides of the preset
  int64_t batch = 64, steps = 20, warmup = 3, threads = 0;
  std::string out_dir;
};
// Under torchrun: one process alone at the total batch, then the job at total / world per
// process (DDP step, compute alone, all-reduce of the gradients alone).
int cmd_bench_ddp(const BenchDdpArgs& a);

struct BenchDataArgs {
  std::string tree;                       // root with train/ and val/ (ImageNet layout)
  std::vector<std::string> splits{"train", "val"};
  std::vector<int64_t> workers;           // empty: 1 and all cores
  int64_t images = 2048, batch = 32, size = 224;
  std::string python;                     // "" = <suite>/.venv/bin/python when present; "none" = skip timm
  std::string out_dir;
};
// The ImageNet input pipeline (decode + the recipe's training / evaluation transform) through the
// suite's loader, and the same tree through timm's (scripts/bench_timm_data.py), side by side.
int cmd_bench_data(const BenchDataArgs& a);

struct SpeechArgs {
  std::string out;
  double hours = 1.0;
  int64_t seed = 0, jobs = 0;
  double valid_percent = 5.0;
  std::string words = "/usr/share/dict/words";
};
int cmd_data_speech(const SpeechArgs& a);

struct ManifestArgs {
  std::string root, out, ext = "flac";
  double valid_percent = 1.0;
  int64_t seed = 42;
};
int cmd_data_manifest(const ManifestArgs& a);


}  // namespace dyt
