// The `dyt` subcommands other than bench: list, config, model, run, table, plot, env, data.
#include "runner/cli/commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <opencv2/core.hpp>
#include <set>

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>

#include "datasets/audio.h"
#include "datasets/dataset.h"
#include "models/model.h"
#include "runner/experiment/config.h"
#include "runner/cli/env.h"
#include "runner/experiment/experiment.h"
#include "core/distributed.h"
#include "core/io.h"
#include "runner/report/index.h"
#include "runner/run/executor.h"
#include "runner/run/run_folder.h"
#include "runner/report/plot.h"
#include "runner/report/tables.h"
#include "runner/tasks/task.h"
#include "runner/train/components.h"

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::vector<std::string> list_presets() {
  std::vector<std::string> out;
  const fs::path dir = suite_home() / "configs" / "models";
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".yaml") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string config_key_reference() {
  std::string out =
      "# Configuration keys\n\n"
      "Every key an experiment YAML (or `--set key=value`) may set, with its type, default and allowed values. "
      "Generated from the schema by `build/dyt list keys --markdown > docs/config_keys.md`; the test "
      "`e2e.docs_are_current` fails when this file and the schema differ. `build/dyt config EXPERIMENT` prints a "
      "run's fully resolved values.\n\n"
      "Model keys depend on `model.type`: one `model` table per type below.\n\n";
  ExperimentConfig cfg;
  out += describe_config_markdown([&](FieldVisitor& v) { cfg.visit(v); }, " (type: " + cfg.model_type + ")");
  for (const auto& name : model_registry().names()) {
    if (name == cfg.model_type) continue;
    ExperimentConfig other;
    other.model_type = name;
    out += describe_config_markdown([&](FieldVisitor& v) { other.visit_model(v); }, " (type: " + name + ")");
  }
  return out;
}

int cmd_list(const std::string& what, bool markdown) {
  auto section = [](const std::string& title) { std::printf("%s:\n", title.c_str()); };
  const bool all = what.empty() || what == "all";
  if (all || what == "experiments") {
    section("experiments (dyt run NAME)");
    for (const auto& e : list_experiments()) {
      std::string desc;
      try {
        YAML::Node d = load_config(suite_home() / "experiments" / (e + ".yaml")).at("description");
        if (d.IsDefined() && d.IsScalar()) desc = d.Scalar();
      } catch (const std::exception&) {
        desc = "(config does not load; see dyt config " + e + ")";
      }
      std::printf("  %-34s %s\n", e.c_str(), desc.c_str());
    }
  }
  if (all || what == "models") {
    section("model types (model.type)");
    for (const auto& [name, t] : model_registry().entries()) std::printf("  %-34s %s\n", name.c_str(), t.help.c_str());
    section("model presets (dyt model NAME; configs/models/NAME.yaml)");
    for (const auto& p : list_presets()) std::printf("  %s\n", p.c_str());
  }
  if (all || what == "norms") {
    section("norms (model.norm.type)");
    for (const auto& [name, t] : norm_registry().entries()) std::printf("  %-34s %s\n", name.c_str(), t.help.c_str());
  }
  if (all || what == "datasets") {
    section("datasets (data.dataset)");
    for (const auto& [name, t] : dataset_registry().entries())
      std::printf("  %-34s %s%s\n", name.c_str(), t.help.c_str(),
                  t.default_root.empty() ? "" : (" [default root " + t.default_root + "]").c_str());
  }
  if (all || what == "tasks") {
    section("tasks (task)");
    for (const auto& [name, t] : task_registry().entries()) std::printf("  %-34s %s\n", name.c_str(), t.help.c_str());
  }
  if (what == "keys" && markdown) {
    std::printf("%s", config_key_reference().c_str());
    return 0;
  }
  if (what == "keys") {
    section("config keys (key, type, default, help)");
    ExperimentConfig cfg;
    std::printf("%s", describe_config([&](FieldVisitor& v) { cfg.visit(v); }).c_str());
  }
  static const std::vector<std::string> kinds{"all", "experiments", "models", "norms", "datasets", "tasks", "keys"};
  if (!what.empty() && std::find(kinds.begin(), kinds.end(), what) == kinds.end())
    throw ConfigError(Origin{"command line"}, "", unknown_name_message("list", what, kinds));
  return 0;
}

int cmd_config(const std::string& experiment, const std::vector<std::string>& sets, const std::vector<std::string>& variants) {
  Experiment e = load_experiment(experiment);
  PlanRequest req;
  req.sets = sets, req.variants = variants, req.out = suite_home() / "results";
  std::vector<RunSpec> runs = plan_runs(e, req);
  std::set<std::pair<std::string, std::string>> shown;
  for (const auto& r : runs) {
    if (!shown.insert({r.variant, r.stage}).second) continue;  // seeds differ only in `seed`
    const ExperimentConfig& c = r.config;
    std::string batch;
    if (c.data.max_tokens > 0)
      batch = fmt::format("up to {} audio samples per update ({} x {} accumulated), peak lr {:.4g}; {}",
                          c.data.max_tokens * accumulation_steps(c), c.data.max_tokens, accumulation_steps(c),
                          effective_lr(c),
                          c.data.total_max_tokens > 0
                              ? fmt::format("with N processes the accumulation is {} / ({} x N)", c.data.total_max_tokens,
                                            c.data.max_tokens)
                              : "with N processes N times that");
    else
      batch = fmt::format("total batch {} ({} x {} accumulated), peak lr {:.4g}; {}", total_batch(c), c.data.batch_size,
                          accumulation_steps(c), effective_lr(c),
                          c.data.total_batch_size > 0
                              ? fmt::format("with N processes the accumulation is {} / ({} x N), the lr the same",
                                            c.data.total_batch_size, c.data.batch_size)
                              : "with N processes the total is N times the batch per process (and the lr with it when "
                                "optim.blr sets it)");
    std::printf("--- # %s, variant %s%s (seed %lld shown)\n# one process: %s\n%s", e.name.c_str(), r.variant.c_str(),
                r.stage.empty() ? "" : (", stage " + r.stage).c_str(), static_cast<long long>(r.seed), batch.c_str(),
                r.resolved_yaml.c_str());
  }
  return 0;
}

ModelPtr build_model_preset(const std::string& preset, const std::vector<std::string>& sets) {
  fs::path file = preset;
  if (!(file.extension() == ".yaml" && fs::exists(file))) file = suite_home() / "configs" / "models" / (preset + ".yaml");
  if (!fs::exists(file)) {
    auto known = list_presets();
    std::string msg = fmt::format("no model preset '{}' (looked for {})", preset, file.string());
    std::string near = nearest_name(preset, known);
    if (!near.empty()) msg += fmt::format("; did you mean '{}'?", near);
    throw ConfigError(Origin{"command line"}, "", msg + "; known: " + join(known));
  }
  ConfigTree tree = load_config(file);
  for (auto s : sets) apply_override(tree, s.rfind("model.", 0) == 0 ? s : "model." + s);
  ExperimentConfig cfg;
  std::vector<std::string> others;
  for (const auto& kv : tree.root)
    if (kv.first.Scalar() != "model") others.push_back(kv.first.Scalar());
  decode_config(tree, [&](FieldVisitor& v) { cfg.visit_model(v); }, others);
  return model_registry().get(cfg.model_type).build(cfg.model());
}

int cmd_model(const std::string& preset, const std::vector<std::string>& sets) {
  torch::NoGradGuard no_grad;
  ModelPtr m = build_model_preset(preset, sets);
  std::printf("%s\n", m->summary().c_str());
  std::printf("norm layers: %zu\n", norm_layers(*m).size());
  std::printf("parameters: %lld\n", static_cast<long long>(count_parameters(*m)));
  return 0;
}

int cmd_env(const std::vector<std::string>& argv) {
  std::printf("%s", format_environment(environment_info(true, argv)).c_str());
  return 0;
}

int cmd_run(const RunArgs& a) {
  Experiment e = load_experiment(a.experiment);
  PlanRequest req;
  req.sets = a.sets;
  if (!a.device.empty()) req.sets.push_back("run.device=" + a.device);
  if (a.max_steps >= 0) req.sets.push_back("train.max_steps=" + std::to_string(a.max_steps));
  if (a.threads >= 0) req.sets.push_back("run.threads=" + std::to_string(a.threads));
  req.variants = a.variants;
  req.seeds = a.seeds;
  req.out = a.out.empty() ? suite_home() / "results" : fs::path(a.out);
  std::vector<RunSpec> runs = plan_runs(e, req);  // every config problem of every run, at once

  ExecuteOptions o;
  o.force = a.force, o.wait_s = a.wait_s, o.argv = a.argv;
  o.resume_command = "dyt run " + a.experiment + (a.out.empty() ? "" : " --out " + a.out);
  // Under torchrun (or srun): one data-parallel job over all processes, or with --spread one run
  // per process. Without a launcher: one process, as always.
  const DistEnv denv = read_dist_env();
  std::unique_ptr<Distributed> dist;
  if (denv.distributed() && a.spread) {
    o.device_index = denv.local_rank, o.rotate = denv.rank, o.spread_world = denv.world;
    std::fprintf(stderr, "[dyt] %s: --spread, one run at a time per process\n", denv.describe().c_str());
  } else if (denv.distributed()) {
    const torch::Device device = resolve_device(runs.front().config.run.device, denv.local_rank);
    const auto t0 = std::chrono::steady_clock::now();
    dist = std::make_unique<Distributed>(denv, device,
                                         std::chrono::milliseconds(static_cast<int64_t>(a.dist_timeout_s * 1000)));
    if (denv.rank == 0)
      std::fprintf(stderr, "[dyt] data-parallel job: %lld processes, %s on %s, process group ready in %.1f s\n",
                   static_cast<long long>(denv.world), dist->backend().c_str(), device.str().c_str(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    o.dist = dist.get(), o.device_index = denv.local_rank;
    o.resume_command = (denv.launcher == "slurm" ? "srun ... " : "torchrun ... ") + o.resume_command;
  }
  ExecuteReport rep = execute_runs(e, runs, o);
  if (rep.interrupted) return 130;
  if (dist && dist->rank() != 0) return 0;  // rank 0 writes the table
  if (denv.distributed() && a.spread) {
    // One table for the sweep: process 0 waits for the runs its siblings took, the others stop.
    if (denv.rank != 0) return 0;
    for (const auto& r : runs) {
      RunLock lock(r.dir);
      if (!lock.held() && !lock.wait(1e9)) continue;
    }
    rep.done += rep.skipped, rep.skipped = 0;
  }
  if (rep.done > 0) {
    std::string table = write_experiment_table(e, runs, req.out);  // the plan that ran, not a re-read by name
    std::printf("\n%s\n(written to %s/table.{md,csv,tex}; `dyt plot %s` draws its curves)\n", table.c_str(),
                (req.out / e.name).c_str(), e.name.c_str());
    write_results_index(req.out);
  }
  if (rep.diverged)
    std::fprintf(stderr, "%lld run(s) diverged; they appear as 'diverged @ step N' in the table\n",
                 static_cast<long long>(rep.diverged));
  if (rep.skipped && !(denv.distributed() && a.spread))
    std::fprintf(stderr, "%lld run(s) skipped because another process holds them; run again later\n",
                 static_cast<long long>(rep.skipped));
  return 0;
}

int cmd_table(const std::vector<std::string>& experiments, const std::string& out, bool paper) {
  const fs::path root = out.empty() ? suite_home() / "results" : fs::path(out);
  if (experiments.empty() && !paper)
    throw ConfigError(Origin{"command line"}, "", "name one or more experiments, or give --paper for the paper's tables");
  for (const auto& e : experiments) {
    std::string md = write_experiment_table(e, root);
    std::printf("%s\n(written to %s/table.{md,csv,tex})\n\n", md.c_str(), (root / e).c_str());
  }
  if (paper) {
    std::printf("%s", write_paper_tables(root, suite_home() / "configs" / "paper" / "tables.yaml").c_str());
    std::printf("(written to %s/paper/tables.{md,csv,tex})\n", root.c_str());
  }
  std::printf("index: %s\n", write_results_index(root).c_str());
  return 0;
}

namespace {

// The config behind a bare checkpoint: its config.json (ours, or timm's hub layout:
// architecture + model_args) as a ViT, the norm from dyt_norm (absent: timm's LayerNorm).
ConfigTree config_from_model_json(const fs::path& file) {
  json j;
  try {
    j = read_json(file);
  } catch (const std::exception& e) {
    throw IoError(fmt::format("{}: {}", file.string(), e.what()));
  }
  const json args = j.value("model_args", json::object());
  if (args.empty())
    throw IoError(fmt::format("{}: no model_args; dyt eval reads timm's layout (architecture + model_args), as dyt writes "
                              "it beside a ViT's weights",
                              file.string()));
  YAML::Node model(YAML::NodeType::Map);
  model["type"] = "vit";
  const std::map<std::string, std::string> keys = {{"img_size", "img_size"},     {"patch_size", "patch_size"},
                                                   {"in_chans", "in_chans"},     {"num_classes", "num_classes"},
                                                   {"embed_dim", "embed_dim"},   {"depth", "depth"},
                                                   {"num_heads", "num_heads"},   {"mlp_ratio", "mlp_ratio"},
                                                   {"qkv_bias", "qkv_bias"}};
  for (const auto& [from, to] : keys)
    if (args.contains(from)) model[to] = YAML::Load(args[from].dump());
  const std::string pool = args.value("global_pool", j.value("global_pool", "token"));
  model["global_pool"] = pool == "avg" ? "avg" : "cls";
  const json norm = j.value("dyt_norm", json{{"type", "layernorm"}, {"eps", 1e-6}});
  for (const auto& [k, v] : norm.items()) model["norm"][k] = YAML::Load(v.dump());
  YAML::Node root(YAML::NodeType::Map);
  root["model"] = model;
  root["optim"]["lr"] = 1e-3;  // not used; the config needs one
  return parse_config_text(YAML::Dump(root), file.string());
}

}  // namespace

int cmd_eval(const EvalArgs& a) {
  const fs::path path(a.checkpoint);
  fs::path weights;
  ConfigTree tree;
  if (fs::is_directory(path)) {  // a run folder
    RunFolder run{path};
    if (!fs::exists(run.config()))
      throw IoError(fmt::format("{}: not a run folder (no config.yaml); give a run folder or a .safetensors file with "
                                "config.json beside it",
                                path.string()));
    tree = load_config(run.config());
    weights = a.ema ? run.ema_weights() : run.weights();
  } else if (path.extension() == ".safetensors") {
    if (a.ema) throw IoError("--ema applies to a run folder; give the EMA's .safetensors file itself");
    const fs::path cj = path.parent_path() / "config.json";
    if (!fs::exists(cj))
      throw IoError(fmt::format("{}: no config.json beside the weights; dyt eval needs the architecture (timm's "
                                "architecture + model_args, as dyt writes it)",
                                path.string()));
    tree = config_from_model_json(cj);
    weights = path;
  } else {
    throw IoError(fmt::format("{}: give a run folder or a .safetensors file", path.string()));
  }
  if (!fs::exists(weights))
    throw IoError(fmt::format("{}: no weights (the run has not finished{})", weights.string(),
                              a.ema ? ", or it kept no EMA: train.ema" : ""));
  std::vector<std::string> sets = a.sets;
  if (!a.device.empty()) sets.push_back("run.device=" + a.device);
  if (a.threads >= 0) sets.push_back("run.threads=" + std::to_string(a.threads));
  for (const auto& s : sets) apply_override(tree, s);
  for (const char* k : {"variants", "seeds", "stages", "run_stages", "sweep", "experiment", "variant", "seed", "stage"}) tree.erase(k);
  RunSpec spec;
  spec.experiment = "eval", spec.variant = "eval";
  decode_config(tree, [&](FieldVisitor& v) { spec.config.visit(v); });
  if (spec.config.run.threads > 0) at::set_num_threads(static_cast<int>(spec.config.run.threads));
  spec.dir = fs::temp_directory_path() / fmt::format("dyt-eval-{}", ::getpid());
  RunContext ctx{spec};
  ctx.device = resolve_device(spec.config.run.device);
  auto task = task_registry().get(spec.config.task).make(ctx);
  const auto t0 = std::chrono::steady_clock::now();
  json r = task->evaluate_weights(weights);
  r["weights"] = weights.string();
  r["device"] = ctx.device.str();
  r["wall_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s\n%s (%lld parameters) on %s\n", weights.string().c_str(), r["data"].get<std::string>().c_str(),
              static_cast<long long>(r["params"].get<int64_t>()), ctx.device.str().c_str());
  for (const char* split : {"val", "test"}) {
    if (!r.contains(split)) continue;
    std::string line = fmt::format("{:<5}", split);
    for (const auto& [k, v] : r[split].items())
      line += v.is_number_float() ? fmt::format("  {} {:.4f}", k, v.get<double>()) : fmt::format("  {} {}", k, v.dump());
    std::printf("%s\n", line.c_str());
  }
  if (!a.json_out.empty()) atomic_write(a.json_out, r.dump(2) + "\n");
  return 0;
}

int cmd_plot(const std::vector<std::string>& experiments, const std::string& out) {
  const fs::path root = out.empty() ? suite_home() / "results" : fs::path(out);
  for (const auto& e : experiments) {
    std::string note;
    auto files = plot_experiment(e, root, &note);
    for (const auto& f : files)
      std::printf("%s %s\n", f.rendered ? "plotted" : "script ", (f.rendered ? f.png : f.gp).c_str());
    if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
  }
  std::printf("index: %s\n", write_results_index(root).c_str());
  return 0;
}

int cmd_data_speech(const SpeechArgs& a) {
  SpeechCorpusOptions o;
  o.hours = a.hours, o.seed = static_cast<uint64_t>(a.seed), o.jobs = static_cast<int>(a.jobs);
  o.valid_percent = a.valid_percent, o.word_list = a.words;
  const auto t0 = std::chrono::steady_clock::now();
  const bool tty = ::isatty(STDERR_FILENO);
  double last_print = -1;
  SpeechCorpusReport r = synthesize_speech_corpus(a.out, o, [&](double have, double want) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double eta = have > 0 ? el * (want - have) / have : NAN;
    if (!tty && el - last_print < 10) return;
    last_print = el;
    std::fprintf(stderr, tty ? "\r\033[K[speech] %.0f / %.0f s of audio (%.0f%%), ETA %s" : "[speech] %.0f / %.0f s of audio (%.0f%%), ETA %s\n",
                 have, want, 100.0 * have / want, format_duration(eta).c_str());
  });
  if (tty) std::fprintf(stderr, "\n");
  std::printf("%s: %lld utterances, %.3f h of 16 kHz speech; train.tsv %lld, valid.tsv %lld\n", a.out.c_str(),
              static_cast<long long>(r.utterances), r.seconds / 3600.0, static_cast<long long>(r.train),
              static_cast<long long>(r.valid));
  return 0;
}

int cmd_data_manifest(const ManifestArgs& a) {
  ScanOptions o;
  o.ext = a.ext, o.valid_percent = a.valid_percent, o.seed = static_cast<uint64_t>(a.seed);
  auto [train, valid] = scan_audio_tree(a.root, a.out, o);
  std::printf("%s: train.tsv %lld files, valid.tsv %lld files (root %s)\n", a.out.c_str(), static_cast<long long>(train),
              static_cast<long long>(valid), a.root.c_str());
  return 0;
}

}  // namespace dyt
