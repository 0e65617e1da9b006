// Experiments: the typed config, variants, sweeps, stages, and the plan of runs (experiment.h).
#include "runner/experiment/experiment.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdlib>

#include "datasets/dataset.h"
#include "runner/tasks/task.h"

namespace dyt {
namespace fs = std::filesystem;

void DataOptions::visit(FieldVisitor& v) {
  v.field("dataset", dataset, doc("data set type").one_of(dataset_registry().names()));
  v.field("root", root, doc("data location (relative: to the suite folder); empty = the data set's default"));
  v.field("image_size", image_size, doc("side of the images fed to the model; 0 = as stored").ge(0));
  v.field("batch_size", batch_size, doc("training batch per process").gt(0));
  v.field("total_batch_size", total_batch_size,
          doc("samples per optimizer update over all processes (the recipe's batch): train.accum_steps is derived "
              "as total / (batch_size x world); 0 = batch_size x world x train.accum_steps")
              .ge(0));
  v.field("eval_batch_size", eval_batch_size, doc("evaluation batch; 0 = batch_size").ge(0));
  v.field("recipe_total_batch", recipe_total_batch,
          doc("the reference recipe's total batch (e.g. 4096); a run at another total batch says so in its header and "
              "summary.json, with the lr scaled by blr x total / 256; 0 = no reference")
              .ge(0));
  v.field("train_subset", train_subset, doc("use the first N training samples; 0 = all").ge(0));
  v.field("val_subset", val_subset, doc("use the first N validation samples; 0 = all").ge(0));
  v.group(dataset != "audio_manifest", [&] {
    v.field("holdout", holdout,
            doc("fraction of the training set (its last samples) held out as the validation split, which per-epoch "
                "evaluation and best_* use; the data set's second split is then a test set measured once after "
                "training (test_* in summary.json). -1 = auto: 0.1 for data sets that publish only train/test "
                "(Fashion-MNIST, MNIST, CIFAR), 0 otherwise; 0 = validate on the data set's second split")
                .ge(-1)
                .lt(1));
    v.check(holdout == -1 || holdout >= 0, "holdout", "give a fraction in [0, 1), or -1 for the data set's default");
  });
  v.field("workers", workers,
          doc("loader threads (image batches: every thread fills samples of the next batch); 0 = load on the "
              "training thread; -1 = auto: on CUDA the node's cores per process (LOCAL_WORLD_SIZE) less one, on "
              "the CPU 1")
              .ge(-1));
  v.field("prefetch", prefetch, doc("batches prepared ahead").gt(0));
  v.field("mean", mean, doc("normalisation mean per channel; empty = the data set's"));
  v.field("std", std, doc("normalisation std per channel; empty = the data set's").gt(0));
  v.group(dataset == "synthetic", [&] {
    v.field("synthetic_size", synthetic_size, doc("synthetic: training samples (validation: a quarter)").gt(0));
    v.field("synthetic_classes", synthetic_classes, doc("synthetic: classes").gt(1));
    v.field("synthetic_image", synthetic_image, doc("synthetic: image side").gt(0));
    v.field("synthetic_channels", synthetic_channels, doc("synthetic: channels (1 or 3)").ge(1).le(3));
  });
  v.group(dataset == "audio_manifest", [&] {
    v.field("train_manifest", train_manifest, doc("audio: training manifest, relative to data.root"));
    v.field("valid_manifest", valid_manifest, doc("audio: validation manifest, relative to data.root"));
    v.field("max_sample_size", max_sample_size, doc("audio: random crop to at most this many samples").gt(0));
    v.field("min_sample_size", min_sample_size, doc("audio: skip utterances shorter than this").ge(0));
    v.field("pad", pad, doc("audio: pad batches with a padding mask; false crops to the shortest utterance"));
    v.field("max_tokens", max_tokens,
            doc("audio: > 0 batches by audio samples per process (fairseq's max_tokens): length-sorted utterances cut "
                "so that longest x count <= max_tokens; data.batch_size is then unused")
                .ge(0));
    v.field("total_max_tokens", total_max_tokens,
            doc("audio: the recipe's audio samples per update over all processes (fairseq: max_tokens x GPUs x "
                "update_freq); train.accum_steps is derived as total / (max_tokens x world); 0 = off")
                .ge(0));
    v.field("normalize", normalize, doc("audio: zero mean, unit variance per utterance (wav2vec 2.0 Large)"));
    v.field("synthesize_hours", synthesize_hours,
            doc("audio: > 0 makes an espeak-ng corpus of this many hours in data.root when it has no manifests").ge(0));
    v.field("synthesize_seed", synthesize_seed, doc("audio: seed of that corpus").ge(0));
  });
  v.section("augment", "training augmentation and evaluation crop", [&] { augment.visit(v); });
}

void OptimOptions::visit(FieldVisitor& v) {
  v.field("name", name, doc("optimizer").one_of({"adamw", "sgd"}));
  v.field("lr", lr, doc("peak learning rate; give lr or blr").ge(0));
  v.field("blr", blr, doc("base learning rate: lr = blr * total batch / 256 (MAE convention)").ge(0));
  v.field("betas", betas, doc("AdamW (beta1, beta2)").ge(0).lt(1));
  v.field("eps", eps, doc("AdamW epsilon").gt(0));
  v.field("weight_decay", weight_decay, doc("decoupled weight decay; never on 1-D params (norm weights, biases, alpha)").ge(0));
  v.field("momentum", momentum, doc("SGD momentum").ge(0).lt(1));
  v.field("layer_decay", layer_decay, doc("layer-wise lr decay factor; 1 = off").gt(0).le(1));
  v.field("decay_all", decay_all,
          doc("weight decay on every parameter, norm gains, biases and DyT's alpha included (fairseq's wav2vec 2.0); "
              "false: none on 1-D parameters and biases (timm, ConvNeXt, MAE)"));
  v.field("clip_grad", clip_grad, doc("clip the global gradient norm to this; 0 = off").ge(0));
  v.check(!(lr > 0 && blr > 0), "lr", "give optim.lr or optim.blr, not both (set the other to 0)");
  v.check(lr > 0 || blr > 0, "lr", "no learning rate: set optim.lr (absolute) or optim.blr (scaled by batch / 256)");
  v.check(betas.size() == 2, "betas", "give two values, e.g. [0.9, 0.999]");
}

void ScheduleOptions::visit(FieldVisitor& v) {
  v.field("epochs", epochs, doc("training epochs").gt(0));
  v.field("warmup_epochs", warmup_epochs, doc("linear warm-up from 0, per step").ge(0));
  v.field("total_steps", total_steps, doc("> 0: schedule length in updates (overrides epochs)").ge(0));
  v.field("warmup_steps", warmup_steps, doc("> 0: warm-up in updates (overrides warmup_epochs)").ge(0));
  v.field("min_lr", min_lr, doc("final learning rate of the cosine").ge(0));
  v.field("kind", kind, doc("decay after warm-up").one_of({"cosine", "constant", "linear"}));
}

void TrainOptions::visit(FieldVisitor& v) {
  v.field("label_smoothing", label_smoothing, doc("label smoothing of the cross-entropy").ge(0).lt(1));
  v.field("ema", ema, doc("keep an exponential moving average of the weights and evaluate it too"));
  v.field("ema_decay", ema_decay, doc("EMA decay per step").gt(0).lt(1));
  v.field("precision", precision,
          doc("auto: bf16 autocast on CUDA, fp32 on the CPU; tf32: fp32 with TF32 matmuls on CUDA (the official ViT "
              "runs); fp16: fp16 autocast with dynamic loss scaling (MAE, fairseq); bf16; fp32")
              .one_of({"auto", "fp32", "tf32", "bf16", "fp16"}));
  v.field("max_steps", max_steps, doc("stop after N optimizer steps (the schedule keeps its length); 0 = no cap").ge(0));
  v.field("eval_every", eval_every, doc("evaluate every N epochs (and after the last)").gt(0));
  v.field("log_every", log_every, doc("write a training metrics line every N steps").gt(0));
  v.field("checkpoint_every", checkpoint_every, doc("checkpoint every N steps; 0 = at epoch ends only").ge(0));
  v.field("keep_checkpoints", keep_checkpoints, doc("checkpoints kept (the newest)").gt(0));
  v.field("max_grad_norm_diverged", max_grad_norm_diverged,
          doc("a gradient norm above this (or NaN/Inf loss) marks the run diverged").gt(0));
  v.field("track_norms_every", track_norms_every,
          doc("every N steps log each norm layer's input std and alpha (the paper's Fig. 8); 0 = off").ge(0));
  v.field("capture_mapping", capture_mapping,
          doc("after training, save up to N input/output points per norm layer on validation data (Fig. 2/4); 0 = off").ge(0));
  v.field("accum_steps", accum_steps,
          doc("micro-batches per optimizer update (gradient accumulation); derived from data.total_batch_size "
              "when that is given")
              .ge(1));
  v.field("tensorboard", tensorboard,
          doc("write TensorBoard event files (every metrics.jsonl line as scalars) to <run>/tensorboard/: "
              "`tensorboard --logdir results` shows the runs live"));
  v.field("bucket_mb", bucket_mb,
          doc("data-parallel jobs: MiB of gradients per all-reduce bucket (DDP's bucket_cap_mb; the first bucket is "
              "1 MiB)")
              .gt(0));
}

void InitOptions::visit(FieldVisitor& v) {
  v.field("from_stage", from_stage, doc("start from the final weights of this earlier stage of the run"));
  v.field("checkpoint", checkpoint, doc("or from this safetensors file (parameter names must match)"));
  v.field("exclude", exclude, doc("parameter-name prefixes not to load, e.g. [head.]"));
  v.field("head_init_std", head_init_std, doc("> 0: re-initialise head.weight with this std (MAE fine-tuning: 2e-5)").ge(0));
  v.field("freeze_backbone", freeze_backbone, doc("train only head.* (linear probing)"));
  v.check(from_stage.empty() || checkpoint.empty(), "from_stage", "give init.from_stage or init.checkpoint, not both");
}

void RunOptions::visit(FieldVisitor& v) {
  v.field("device", device, doc("auto: CUDA when available").one_of({"auto", "cpu", "cuda"}));
  v.field("threads", threads, doc("CPU threads for tensor ops; 0 = all cores").ge(0));
}

void ReportOptions::visit(FieldVisitor& v) {
  v.field("row", row, doc("table row label; empty = the experiment name"));
  v.field("column", column, doc("table column label; empty = the variant name"));
  const std::vector<std::string> metrics = {"top1",      "top5",          "val_loss",      "ema_top1",       "best_top1",
                                            "best_ema_top1", "test_top1",  "test_top5",     "test_loss",      "test_ema_top1",
                                            "loss_bits", "best_loss_bits", "accuracy",      "best_accuracy"};
  v.field("metric", metric,
          doc("summary.json metric shown in the table: the final validation value (top1, ...), the best over the "
              "evaluations (best_*), or the test split measured once after training (test_*, data.holdout)")
              .one_of(metrics));
  v.field("also", also,
          doc("more summary.json metrics, each as its own table below the first (e.g. [best_top1, best_ema_top1]: the "
              "ViT scripts' max accuracy and max EMA accuracy)"));
  for (const auto& m : also)
    v.check(std::find(metrics.begin(), metrics.end(), m) != metrics.end(), "also",
            fmt::format("'{}' is not a table metric; one of: {}", m, fmt::join(metrics, ", ")));
  v.field("baseline", baseline,
          doc("column the differences (Δ) are computed against; empty = the first; none = no difference columns "
              "(sweeps, where the first column is not a baseline)"));
  v.field("stage", stage, doc("staged experiments: the stage whose results the table shows; empty = the last"));
}

ExperimentConfig::ExperimentConfig() {
  for (const auto& [name, t] : model_registry().entries()) model_options[name] = t.make_options();
}

ExperimentConfig::ExperimentConfig(const ExperimentConfig& o) { *this = o; }

ExperimentConfig& ExperimentConfig::operator=(const ExperimentConfig& o) {
  if (this == &o) return *this;
  description = o.description, task = o.task, seeds = o.seeds, model_type = o.model_type;
  model_options.clear();
  for (const auto& [name, m] : o.model_options) model_options[name] = m->clone();
  data = o.data, optim = o.optim, schedule = o.schedule, train = o.train, init = o.init, run = o.run, report = o.report;
  return *this;
}

void ExperimentConfig::visit_model(FieldVisitor& v) {
  v.section("model", "the network; model.type picks the architecture, model.norm the normalization layer", [&] {
    v.field("type", model_type, doc("architecture").one_of(model_registry().names()));
    for (auto& [name, opts] : model_options) v.group(name == model_type, [&, o = opts.get()] { o->visit(v); });
  });
}

void ExperimentConfig::visit(FieldVisitor& v) {
  v.field("description", description, doc("one line on what the experiment shows"));
  v.field("task", task, doc("what a run does").one_of(task_registry().names()));
  v.field("seeds", seeds, doc("seeds run for every variant").required());
  visit_model(v);
  v.section("data", "data set, loader and augmentation", [&] { data.visit(v); });
  v.section("optim", "optimizer", [&] { optim.visit(v); });
  v.section("schedule", "learning-rate schedule and length", [&] { schedule.visit(v); });
  v.section("train", "training loop", [&] { train.visit(v); });
  v.section("init", "starting weights (pretrained stage or file)", [&] { init.visit(v); });
  v.section("run", "where and how to run (not part of a run's identity)", [&] { run.visit(v); });
  v.section("report", "how runs appear in the experiment's table", [&] { report.visit(v); });
}

namespace {
// The accumulation a fixed total per update implies: total / (per_process x world), which must be
// an integer and agree with train.accum_steps when that is set too. The keys name the fields
// ("data.total_batch_size" / "data.batch_size", or the audio budget's).
int64_t derive_accumulation(const ExperimentConfig& c, int64_t world, int64_t total, const char* total_key,
                            int64_t per_process, const char* per_key) {
  const int64_t per_update = per_process * world;
  if (total % per_update != 0)
    throw ConfigError(Origin{}, total_key,
                      fmt::format("{} is not {} {} x {} process(es) x an integer accumulation; change {} or {}", total,
                                  per_key, per_process, world, total_key, per_key));
  const int64_t accum = total / per_update;
  if (c.train.accum_steps != 1 && c.train.accum_steps != accum)
    throw ConfigError(Origin{}, "train.accum_steps",
                      fmt::format("{} contradicts {} {} = {} {} x {} process(es) x {}; give one of the two",
                                  c.train.accum_steps, total_key, total, per_key, per_process, world, accum));
  return accum;
}
}  // namespace

int64_t accumulation_steps(const ExperimentConfig& c, int64_t world) {
  if (c.data.max_tokens > 0 && c.data.total_max_tokens > 0)  // fairseq: update_freq from the audio budget
    return derive_accumulation(c, world, c.data.total_max_tokens, "data.total_max_tokens", c.data.max_tokens,
                               "data.max_tokens");
  if (c.data.total_batch_size <= 0) return c.train.accum_steps;
  return derive_accumulation(c, world, c.data.total_batch_size, "data.total_batch_size", c.data.batch_size,
                             "data.batch_size");
}

int64_t total_batch(const ExperimentConfig& c, int64_t world) {
  return c.data.batch_size * world * accumulation_steps(c, world);
}

double effective_lr(const ExperimentConfig& c, int64_t world) {
  if (c.optim.lr > 0) return c.optim.lr;
  return c.optim.blr * static_cast<double>(total_batch(c, world)) / 256.0;
}

fs::path resolve_data_path(const std::string& path) {
  fs::path p(path);
  return p.is_relative() && !path.empty() ? suite_home() / p : p;
}

fs::path suite_home() {
  if (const char* h = std::getenv("DYT_HOME"); h && *h) return fs::path(h);
  if (fs::is_directory("experiments") && fs::is_directory("configs")) return fs::current_path();
  return fs::path(DYT_SOURCE_DIR);
}

std::vector<std::string> list_experiments() {
  std::vector<std::string> out;
  const fs::path root = suite_home() / "experiments";
  if (!fs::is_directory(root)) return out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file() || e.path().extension() != ".yaml") continue;
    fs::path rel = fs::relative(e.path(), root);
    out.push_back(rel.replace_extension("").generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Experiment load_experiment(const std::string& name_or_path) {
  Experiment e;
  const fs::path root = suite_home() / "experiments";
  fs::path as_path(name_or_path);
  if ((as_path.extension() == ".yaml" || as_path.extension() == ".yml") && fs::exists(as_path)) {
    e.file = as_path;
    std::error_code ec;
    fs::path rel = fs::relative(fs::weakly_canonical(as_path), fs::weakly_canonical(root), ec);
    if (!ec && !rel.empty() && rel.begin()->string() != "..") e.name = fs::path(rel).replace_extension("").generic_string();
    else e.name = as_path.stem().string();
  } else {
    e.file = root / (name_or_path + ".yaml");
    e.name = name_or_path;
    if (!fs::exists(e.file)) {
      auto known = list_experiments();
      std::string msg = fmt::format("no experiment '{}' (looked for {})", name_or_path, e.file.string());
      std::string near = nearest_name(name_or_path, known);
      if (!near.empty()) msg += fmt::format("; did you mean '{}'?", near);
      msg += "; `dyt list experiments` shows them all, or give a path to a .yaml file";
      throw ConfigError(Origin{"command line"}, "", msg);
    }
  }
  return experiment_from_tree(e.name, e.file, load_config(e.file));
}

Experiment experiment_from_tree(const std::string& name, const fs::path& file, ConfigTree tree) {
  Experiment e;
  e.name = name, e.file = file, e.tree = std::move(tree);
  YAML::Node vars = e.tree.at("variants");
  if (vars.IsDefined() && !vars.IsNull()) {
    if (!vars.IsMap())
      throw ConfigError(e.tree.origin_of("variants"), "variants",
                        "expected a mapping of variant name -> overrides, e.g. ln: {model.norm.type: layernorm}");
    for (const auto& kv : vars) e.variant_names.push_back(kv.first.Scalar());
  }
  if (e.variant_names.empty()) e.variant_names.push_back("default");
  YAML::Node sweep = e.tree.at("sweep");
  if (sweep.IsDefined() && !sweep.IsNull()) {
    if (!sweep.IsMap())
      throw ConfigError(e.tree.origin_of("sweep"), "sweep", "expected a mapping of key -> list of values, e.g. model.norm.alpha_init: [0.5, 1.0]");
    // Cartesian product, the first key varying slowest; names like dyt.alpha_init=0.5.embed_dim=64
    std::vector<std::pair<std::string, std::vector<YAML::Node>>> axes;
    std::function<void(const YAML::Node&, const std::string&)> collect = [&](const YAML::Node& n, const std::string& prefix) {
      for (const auto& kv : n) {
        const std::string key = prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar();
        if (kv.second.IsMap()) {
          collect(kv.second, key);
        } else if (kv.second.IsSequence() && kv.second.size() > 0) {
          std::vector<YAML::Node> values;
          for (const auto& v : kv.second) values.push_back(v);
          axes.emplace_back(key, values);
        } else {
          throw ConfigError(e.tree.origin_of("sweep." + key), "sweep." + key, "expected a non-empty list of values");
        }
      }
    };
    collect(sweep, "");
    std::vector<std::string> names;
    for (const auto& base : e.variant_names) {
      std::vector<size_t> idx(axes.size(), 0);
      while (true) {
        SweepPoint p;
        p.base_variant = base;
        std::string name = base == "default" ? "" : base;
        for (size_t a = 0; a < axes.size(); ++a) {
          const YAML::Node& v = axes[a].second[idx[a]];
          p.values.emplace_back(axes[a].first, v);
          const std::string leaf = axes[a].first.substr(axes[a].first.rfind('.') + 1);
          name += (name.empty() ? "" : ".") + leaf + "=" + (v.IsScalar() ? v.Scalar() : std::to_string(idx[a]));
        }
        names.push_back(name);
        e.sweep_points[name] = p;
        size_t a = axes.size();
        while (a > 0 && ++idx[a - 1] == axes[a - 1].second.size()) idx[--a] = 0;
        if (a == 0) break;
      }
    }
    e.variant_names = names;
  }
  return e;
}

namespace {

ConfigTree subtree(const ConfigTree& t, const std::string& key) {
  ConfigTree out;
  YAML::Node n = t.at(key);
  if (n.IsDefined() && n.IsMap()) out.root = YAML::Clone(n);
  const std::string prefix = key + ".";
  for (const auto& [k, o] : t.origins)
    if (k.compare(0, prefix.size(), prefix) == 0) out.origins[k.substr(prefix.size())] = o;
  return out;
}

}  // namespace

namespace {

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot = key.find('.'); dot != std::string::npos; dot = key.find('.', start)) {
    parts.push_back(key.substr(start, dot - start));
    start = dot + 1;
  }
  parts.push_back(key.substr(start));
  return parts;
}

std::vector<std::string> map_keys(const YAML::Node& n) {
  std::vector<std::string> out;
  if (n.IsDefined() && n.IsMap())
    for (const auto& kv : n) out.push_back(kv.first.Scalar());
  return out;
}

}  // namespace

std::vector<RunSpec> plan_runs(const Experiment& e, const PlanRequest& req) {
  for (const auto& v : req.variants) {
    if (std::find(e.variant_names.begin(), e.variant_names.end(), v) == e.variant_names.end())
      throw ConfigError(Origin{"--variants"}, "", unknown_name_message("variant of " + e.name, v, e.variant_names));
  }
  ConfigTree base = e.tree;
  base.erase("variants");
  base.erase("sweep");
  std::vector<RunSpec> runs;
  std::vector<Problem> problems;
  auto add_problems = [&](const ConfigError& err, const std::string& where) {
    for (auto p : err.problems()) {
      if (!where.empty()) p.message += " [" + where + "]";
      bool dup = false;  // the same problem in every variant / stage is reported once
      for (const auto& q : problems) dup |= q.key == p.key && q.origin.str() == p.origin.str();
      if (!dup) problems.push_back(p);
    }
  };
  for (const auto& variant : e.variant_names) {
    if (!req.variants.empty() && std::find(req.variants.begin(), req.variants.end(), variant) == req.variants.end())
      continue;
    ConfigTree tree = base;
    auto sp = e.sweep_points.find(variant);
    const std::string declared = sp == e.sweep_points.end() ? variant : sp->second.base_variant;
    if (declared != "default" || e.tree.at("variants").IsDefined()) {
      YAML::Node ov = e.tree.at("variants." + declared);
      if (ov.IsDefined() && !ov.IsNull() && !ov.IsMap()) {
        problems.push_back({e.tree.origin_of("variants." + declared), "variants." + declared,
                            "a variant is a mapping of overrides, e.g. {model.norm.type: dyt}"});
        continue;
      }
      merge_config(tree, subtree(e.tree, "variants." + declared));
    }
    if (sp != e.sweep_points.end())
      for (const auto& [key, value] : sp->second.values) {
        YAML::Node one(YAML::NodeType::Map);
        one[key] = YAML::Clone(value);  // dotted key: expanded when merged
        merge_node(tree, one, "", e.tree.origin_of("sweep." + key));
      }
    const std::string tag = e.variant_names.size() > 1 ? "variant " + variant : "";
    // Stages: all of them in file order, or the variant's run_stages.
    std::vector<std::string> all_stages = map_keys(tree.at("stages")), stages = all_stages;
    YAML::Node rs = tree.at("run_stages");
    if (rs.IsDefined() && !rs.IsNull()) {
      stages.clear();
      std::vector<YAML::Node> items;
      if (rs.IsSequence())
        for (const auto& x : rs) items.push_back(x);
      else items.push_back(rs);
      for (const auto& x : items) {
        const std::string name = x.IsScalar() ? x.Scalar() : "";
        if (std::find(all_stages.begin(), all_stages.end(), name) == all_stages.end())
          problems.push_back({tree.origin_of("run_stages"), "run_stages", unknown_name_message("stage", name, all_stages)});
        else stages.push_back(name);
      }
    }
    if (all_stages.empty()) stages = {""};
    ConfigTree unstaged = tree;
    unstaged.erase("stages");
    unstaged.erase("run_stages");
    std::vector<std::pair<std::string, ExperimentConfig>> configs;
    bool ok = true;
    for (const auto& stage : stages) {
      ConfigTree st = unstaged;
      if (!stage.empty()) merge_config(st, subtree(tree, "stages." + stage));
      ExperimentConfig cfg;
      try {
        for (const auto& s : req.sets) apply_override(st, s);
        decode_config(st, [&](FieldVisitor& v) { cfg.visit(v); });
      } catch (const ConfigError& err) {
        add_problems(err, tag + (stage.empty() ? "" : (tag.empty() ? "" : ", ") + std::string("stage ") + stage));
        ok = false;
        continue;
      }
      if (!cfg.init.from_stage.empty()) {
        auto pos = std::find(all_stages.begin(), all_stages.end(), cfg.init.from_stage);
        auto self = std::find(all_stages.begin(), all_stages.end(), stage);
        if (pos == all_stages.end() || pos >= self) {
          problems.push_back({st.origin_of("init.from_stage"), "init.from_stage",
                              fmt::format("'{}' is not an earlier stage of this experiment (stages: {})", cfg.init.from_stage,
                                          join(all_stages))});
          ok = false;
        }
      }
      configs.emplace_back(stage, std::move(cfg));
    }
    if (!ok) continue;
    std::vector<int64_t> seeds = req.seeds.empty() ? configs.front().second.seeds : req.seeds;
    for (int64_t seed : seeds) {
      for (const auto& [stage, cfg] : configs) {
        RunSpec r;
        r.experiment = e.name;
        r.variant = variant;
        r.seed = seed;
        r.stage = stage;
        if (!stage.empty()) r.stages = stages;
        r.config = cfg;
        r.config.seeds = {seed};
        YAML::Node enc = encode_config([&](FieldVisitor& v) { r.config.visit(v); });
        enc.remove("seeds");
        YAML::Node head(YAML::NodeType::Map);
        head["experiment"] = e.name;
        head["variant"] = variant;
        head["seed"] = seed;
        if (!stage.empty()) head["stage"] = stage;
        for (const auto& kv : enc) head[kv.first.Scalar()] = kv.second;
        r.resolved_yaml = to_yaml_string(head) + "\n";
        YAML::Node ident = YAML::Clone(head);
        ident.remove("run");
        ident.remove("description");
        r.identity = to_yaml_string(ident);
        // report.row / report.column may name config values: "alpha0 = {model.norm.alpha_init}"
        auto fill = [&](std::string text) {
          for (size_t open = text.find('{'); open != std::string::npos; open = text.find('{', open + 1)) {
            const size_t close = text.find('}', open);
            if (close == std::string::npos) break;
            YAML::Node v = YAML::Clone(head);
            for (const auto& part : split_key(text.substr(open + 1, close - open - 1))) {
              if (!v.IsMap()) break;
              YAML::Node next = static_cast<const YAML::Node&>(v)[part];
              v.reset(next);
            }
            if (v.IsDefined() && v.IsScalar()) text.replace(open, close - open + 1, v.Scalar());
          }
          return text;
        };
        r.config.report.row = fill(r.config.report.row);
        r.config.report.column = fill(r.config.report.column);
        r.dir = req.out / e.name / variant / fmt::format("seed{}", seed);
        if (!stage.empty()) r.dir /= stage;
        runs.push_back(std::move(r));
      }
    }
  }
  if (!problems.empty()) throw ConfigError(problems);
  return runs;
}

}  // namespace dyt
