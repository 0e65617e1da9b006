// The typed experiment config and the planner that expands an experiment into runs.
//
//   YAML file --load/compose/override--> ConfigTree --plan--> RunSpec per (variant x seed)
//
// An experiment file holds the config keys below plus `variants:` (named override sets, e.g.
// ln: {model.norm.type: layernorm}) and `seeds:`. Each run's config is the experiment's config,
// then its variant's overrides, then the command line's --set overrides.
// A staged experiment (MAE: pretrain, then fine-tune) also has `stages:` (name -> overrides, run
// in file order; a later stage starts from an earlier one's weights through init.from_stage)
// and may restrict them per variant with `run_stages: [...]` (e.g. a from-scratch baseline).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datasets/transforms.h"
#include "models/model.h"
#include "runner/experiment/config.h"

namespace dyt {

struct DataOptions {
  std::string dataset = "fashion_mnist";
  std::string root;           // "" = the data set's default location
  int64_t image_size = 0;     // 0 = the stored size
  int64_t batch_size = 128;   // per process
  int64_t total_batch_size = 0;  // per optimizer update over all processes; 0 = batch_size x world x accum
  int64_t eval_batch_size = 0;
  int64_t train_subset = 0, val_subset = 0;  // first N samples; 0 = all
  double holdout = -1;  // fraction of the training set validated on; -1 = auto (0.1 where the 2nd split is a test set)
  int64_t workers = 1, prefetch = 4;
  std::vector<double> mean, std;  // empty = the data set's
  int64_t synthetic_size = 2048, synthetic_classes = 10, synthetic_image = 32, synthetic_channels = 3;
  // audio_manifest
  std::string train_manifest = "train.tsv", valid_manifest = "valid.tsv";
  int64_t max_sample_size = 250000, min_sample_size = 32000;
  int64_t max_tokens = 0;        // > 0: audio batches of up to this many samples per process (fairseq)
  int64_t total_max_tokens = 0;  // > 0: the recipe's audio samples per update over all processes
  int64_t recipe_total_batch = 0;  // the reference recipe's total batch (a run at another one says so)
  bool pad = false, normalize = false;
  double synthesize_hours = 0.0;  // > 0: make an espeak-ng corpus of this size in data.root if it has none
  int64_t synthesize_seed = 0;
  AugmentOptions augment;
  void visit(FieldVisitor& v);
};

struct OptimOptions {
  std::string name = "adamw";
  double lr = 0.0, blr = 0.0;  // give one: lr absolute, or blr with lr = blr * total batch / 256
  std::vector<double> betas{0.9, 0.999};
  double eps = 1e-8, weight_decay = 0.05, momentum = 0.9;
  double layer_decay = 1.0;  // < 1: layer-wise lr decay (MAE/BEiT fine-tuning)
  bool decay_all = false;    // weight decay on every parameter (fairseq) instead of none on 1-D ones (timm)
  double clip_grad = 0.0;    // max global gradient norm; 0 = off
  void visit(FieldVisitor& v);
};

struct ScheduleOptions {
  int64_t epochs = 10;
  double warmup_epochs = 1.0;
  int64_t total_steps = 0, warmup_steps = 0;  // > 0: the schedule in optimizer updates (fairseq style)
  double min_lr = 1e-6;
  std::string kind = "cosine";
  void visit(FieldVisitor& v);
};

struct TrainOptions {
  double label_smoothing = 0.1;
  bool ema = false;
  double ema_decay = 0.9999;
  std::string precision = "auto";  // auto: bf16 autocast on CUDA, fp32 on CPU
  int64_t max_steps = 0;           // stop after this many optimizer steps; 0 = the schedule's
  int64_t eval_every = 1;          // epochs
  int64_t log_every = 50;          // steps
  int64_t checkpoint_every = 0;    // steps; 0 = at epoch ends only
  int64_t keep_checkpoints = 2;
  double max_grad_norm_diverged = 1e6;  // a gradient norm above this marks the run diverged
  int64_t track_norms_every = 0;        // log every norm layer's input std (and alpha) every N steps
  int64_t capture_mapping = 0;          // at the end, save up to N (input, output) points per norm layer
  int64_t accum_steps = 1;              // micro-batches per optimizer update (gradient accumulation)
  double bucket_mb = 25.0;
  bool tensorboard = true;              // TensorBoard event files in the run folder              // data parallelism: gradient all-reduce bucket size (DDP's bucket_cap_mb)
  void visit(FieldVisitor& v);
};

// Starting weights: the final weights of an earlier stage of the same run (MAE pretraining ->
// fine-tuning), or a safetensors file. Tensors are matched by name and shape.
struct InitOptions {
  std::string from_stage;
  std::string checkpoint;
  std::vector<std::string> exclude;  // parameter-name prefixes not to load
  double head_init_std = 0.0;        // > 0: head.weight ~ trunc_normal(std), head.bias = 0 (MAE: 2e-5)
  bool freeze_backbone = false;      // train only head.* (linear probing)
  void visit(FieldVisitor& v);
};

struct RunOptions {
  std::string device = "auto";
  int64_t threads = 0;  // intra-op threads; 0 = all cores
  void visit(FieldVisitor& v);
};

struct ReportOptions {
  std::string row;       // table row label; "" = the model preset / experiment name
  std::string column;    // table column label; "" = the variant name
  std::string metric = "top1";
  std::vector<std::string> also;  // more summary metrics, each its own table below the first
  std::string baseline;  // column the delta is taken against; "" = the first column
  std::string stage;     // for staged experiments: whose summary the table shows; "" = the last
  void visit(FieldVisitor& v);
};

struct ExperimentConfig {
  std::string description;
  std::string task = "classification";
  std::vector<int64_t> seeds{0};
  std::string model_type = "vit";
  // Options of every model type. The YAML's model keys are decoded into all of them, so keys of
  // another type (e.g. MAE's decoder_* in a fine-tuning stage) are accepted, while only the
  // active type's appear in the resolved config (as for norms).
  std::map<std::string, std::unique_ptr<ModelOptions>> model_options;
  const ModelOptions& model() const { return *model_options.at(model_type); }
  ModelOptions& model() { return *model_options.at(model_type); }
  DataOptions data;
  OptimOptions optim;
  ScheduleOptions schedule;
  TrainOptions train;
  InitOptions init;
  RunOptions run;
  ReportOptions report;

  ExperimentConfig();
  ExperimentConfig(const ExperimentConfig& o);
  ExperimentConfig& operator=(const ExperimentConfig& o);
  ExperimentConfig(ExperimentConfig&&) = default;
  ExperimentConfig& operator=(ExperimentConfig&&) = default;
  void visit(FieldVisitor& v);
  // Only the `model:` section (what `dyt model` reads from a preset).
  void visit_model(FieldVisitor& v);
};

struct RunSpec {
  std::string experiment;  // e.g. smoke/vit_fmnist
  std::string variant;     // e.g. ln
  int64_t seed = 0;
  std::string stage;                 // "" for single-stage experiments
  std::vector<std::string> stages;   // the stages this (variant, seed) runs, in order
  ExperimentConfig config;
  std::string resolved_yaml;  // what config.yaml holds
  std::string identity;       // the part that must match to reuse results (no run: section)
  std::filesystem::path dir;  // <out>/<experiment>/<variant>/seed<k>[/<stage>]
};

struct PlanRequest {
  std::vector<std::string> sets;      // --set overrides
  std::vector<std::string> variants;  // empty = all
  std::vector<int64_t> seeds;         // empty = the config's
  std::filesystem::path out;          // results root
};

// A point of a `sweep:` (key -> list of values, expanded as a Cartesian product over every
// variant): its base variant and the values it sets.
struct SweepPoint {
  std::string base_variant;
  std::vector<std::pair<std::string, YAML::Node>> values;
};

struct Experiment {
  std::string name;
  std::filesystem::path file;
  ConfigTree tree;
  std::vector<std::string> variant_names;  // in file order; {"default"} when none; sweeps expanded
  std::map<std::string, SweepPoint> sweep_points;
};

// Variant names and sweep points of a loaded tree (load_experiment calls it).
Experiment experiment_from_tree(const std::string& name, const std::filesystem::path& file, ConfigTree tree);

// The suite's home (experiments/, configs/, results/): $DYT_HOME, else the current folder if it
// has experiments/, else the source tree the binary was built from.
std::filesystem::path suite_home();
// Finds an experiment by name (experiments/<name>.yaml) or path; throws ConfigError otherwise.
Experiment load_experiment(const std::string& name_or_path);
// All experiment names under experiments/.
std::vector<std::string> list_experiments();
// Expands variants x seeds, validating every run's config (all problems reported at once).
std::vector<RunSpec> plan_runs(const Experiment& e, const PlanRequest& req);
// A data path from a config: relative paths are taken from the suite's folder.
std::filesystem::path resolve_data_path(const std::string& path);
// Resolves the effective learning rate: lr, or blr x total batch / 256 (MAE's rule).
double effective_lr(const ExperimentConfig& c, int64_t world = 1);
// Micro-batches per optimizer update: train.accum_steps, or derived from data.total_batch_size
// (config error naming the three numbers when they do not divide).
int64_t accumulation_steps(const ExperimentConfig& c, int64_t world = 1);
// Samples per optimizer update: batch_size x world x accumulation (the blr rule's batch).
int64_t total_batch(const ExperimentConfig& c, int64_t world = 1);

}  // namespace dyt
