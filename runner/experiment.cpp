#include "runner/experiment.h"

#include <fmt/format.h>

#include <cstdlib>

#include "datasets/dataset.h"
#include "runner/task.h"

namespace dyt {
namespace fs = std::filesystem;

void DataOptions::visit(FieldVisitor& v) {
  v.field("dataset", dataset, doc("data set type").one_of(dataset_registry().names()));
  v.field("root", root, doc("data location; empty = the data set's default (e.g. /usr/share/datasets/fashion-mnist)"));
  v.field("image_size", image_size, doc("side of the images fed to the model; 0 = as stored").ge(0));
  v.field("batch_size", batch_size, doc("training batch per process").gt(0));
  v.field("eval_batch_size", eval_batch_size, doc("evaluation batch; 0 = batch_size").ge(0));
  v.field("train_subset", train_subset, doc("use the first N training samples; 0 = all").ge(0));
  v.field("val_subset", val_subset, doc("use the first N validation samples; 0 = all").ge(0));
  v.field("workers", workers, doc("loader threads; 0 = load on the training thread").ge(0));
  v.field("prefetch", prefetch, doc("batches prepared ahead").gt(0));
  v.field("mean", mean, doc("normalisation mean per channel; empty = the data set's"));
  v.field("std", std, doc("normalisation std per channel; empty = the data set's").gt(0));
  v.group(dataset == "synthetic", [&] {
    v.field("synthetic_size", synthetic_size, doc("synthetic: training samples (validation: a quarter)").gt(0));
    v.field("synthetic_classes", synthetic_classes, doc("synthetic: classes").gt(1));
    v.field("synthetic_image", synthetic_image, doc("synthetic: image side").gt(0));
    v.field("synthetic_channels", synthetic_channels, doc("synthetic: channels (1 or 3)").ge(1).le(3));
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
  v.field("clip_grad", clip_grad, doc("clip the global gradient norm to this; 0 = off").ge(0));
  v.check(!(lr > 0 && blr > 0), "lr", "give optim.lr or optim.blr, not both (set the other to 0)");
  v.check(lr > 0 || blr > 0, "lr", "no learning rate: set optim.lr (absolute) or optim.blr (scaled by batch / 256)");
  v.check(betas.size() == 2, "betas", "give two values, e.g. [0.9, 0.999]");
}

void ScheduleOptions::visit(FieldVisitor& v) {
  v.field("epochs", epochs, doc("training epochs").gt(0));
  v.field("warmup_epochs", warmup_epochs, doc("linear warm-up from 0, per step").ge(0));
  v.field("min_lr", min_lr, doc("final learning rate of the cosine").ge(0));
  v.field("kind", kind, doc("decay after warm-up").one_of({"cosine", "constant", "linear"}));
}

void TrainOptions::visit(FieldVisitor& v) {
  v.field("label_smoothing", label_smoothing, doc("label smoothing of the cross-entropy").ge(0).lt(1));
  v.field("ema", ema, doc("keep an exponential moving average of the weights and evaluate it too"));
  v.field("ema_decay", ema_decay, doc("EMA decay per step").gt(0).lt(1));
  v.field("precision", precision, doc("auto: bf16 autocast on CUDA, fp32 on CPU").one_of({"auto", "fp32", "bf16"}));
  v.field("max_steps", max_steps, doc("stop after N optimizer steps (the schedule keeps its length); 0 = no cap").ge(0));
  v.field("eval_every", eval_every, doc("evaluate every N epochs (and after the last)").gt(0));
  v.field("log_every", log_every, doc("write a training metrics line every N steps").gt(0));
  v.field("checkpoint_every", checkpoint_every, doc("checkpoint every N steps; 0 = at epoch ends only").ge(0));
  v.field("keep_checkpoints", keep_checkpoints, doc("checkpoints kept (the newest)").gt(0));
  v.field("max_grad_norm_diverged", max_grad_norm_diverged,
          doc("a gradient norm above this (or NaN/Inf loss) marks the run diverged").gt(0));
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
  v.field("metric", metric, doc("summary.json metric shown in the table").one_of({"top1", "top5", "val_loss", "ema_top1", "best_top1"}));
  v.field("baseline", baseline, doc("column the delta is computed against; empty = the first"));
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

double effective_lr(const ExperimentConfig& c, int64_t world) {
  if (c.optim.lr > 0) return c.optim.lr;
  return c.optim.blr * static_cast<double>(c.data.batch_size * world) / 256.0;
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
  e.tree = load_config(e.file);
  YAML::Node vars = e.tree.at("variants");
  if (vars.IsDefined() && !vars.IsNull()) {
    if (!vars.IsMap())
      throw ConfigError(e.tree.origin_of("variants"), "variants",
                        "expected a mapping of variant name -> overrides, e.g. ln: {model.norm.type: layernorm}");
    for (const auto& kv : vars) e.variant_names.push_back(kv.first.Scalar());
  }
  if (e.variant_names.empty()) e.variant_names.push_back("default");
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
    if (variant != "default" || e.tree.at("variants").IsDefined()) {
      YAML::Node ov = e.tree.at("variants." + variant);
      if (ov.IsDefined() && !ov.IsNull() && !ov.IsMap()) {
        problems.push_back({e.tree.origin_of("variants." + variant), "variants." + variant,
                            "a variant is a mapping of overrides, e.g. {model.norm.type: dyt}"});
        continue;
      }
      merge_config(tree, subtree(e.tree, "variants." + variant));
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
