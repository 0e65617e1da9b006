#include "runner/commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <opencv2/core.hpp>
#include <set>

#include <unistd.h>

#include <chrono>

#include "datasets/audio.h"
#include "datasets/dataset.h"
#include "models/model.h"
#include "runner/config.h"
#include "runner/env.h"
#include "runner/experiment.h"
#include "runner/io.h"
#include "runner/plot.h"
#include "runner/report.h"
#include "runner/task.h"
#include "runner/train.h"

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int sig) {
  g_stop.store(true);
  std::signal(sig, SIG_DFL);  // a second signal ends the process at once
}

std::vector<std::string> list_presets() {
  std::vector<std::string> out;
  const fs::path dir = suite_home() / "configs" / "models";
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".yaml") out.push_back(e.path().stem().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Differences between two YAML trees as "key: old -> new" lines.
void yaml_diff(const YAML::Node& a, const YAML::Node& b, const std::string& prefix, std::vector<std::string>& out) {
  auto text = [](const YAML::Node& n) {
    if (!n.IsDefined()) return std::string("(absent)");
    std::string s = to_yaml_string(n);
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s;
  };
  if (a.IsMap() && b.IsMap()) {
    std::vector<std::string> keys;
    for (const auto& kv : a) keys.push_back(kv.first.Scalar());
    for (const auto& kv : b)
      if (std::find(keys.begin(), keys.end(), kv.first.Scalar()) == keys.end()) keys.push_back(kv.first.Scalar());
    for (const auto& k : keys) {
      const YAML::Node& ca = a;
      const YAML::Node& cb = b;
      yaml_diff(ca[k], cb[k], prefix.empty() ? k : prefix + "." + k, out);
    }
    return;
  }
  if (text(a) != text(b)) out.push_back(fmt::format("{}: {} -> {}", prefix, text(a), text(b)));
}

torch::Device resolve_device(const std::string& want) {
  if (want == "cuda") {
    if (!torch::cuda::is_available())
      throw ConfigError(Origin{"--device / run.device"}, "run.device",
                        "CUDA requested but no CUDA device is visible to LibTorch; use --device cpu");
    return torch::Device(torch::kCUDA, 0);
  }
  if (want == "auto" && torch::cuda::is_available()) return torch::Device(torch::kCUDA, 0);
  return torch::kCPU;
}

}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

int cmd_list(const std::string& what) {
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
    std::printf("--- # %s, variant %s%s (seed %lld shown)\n%s", e.name.c_str(), r.variant.c_str(),
                r.stage.empty() ? "" : (", stage " + r.stage).c_str(), static_cast<long long>(r.seed),
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

  // Refuse changed configs before running anything, with the differences spelled out.
  std::vector<std::string> refused;
  for (const auto& r : runs) {
    const fs::path saved = r.dir / "config.yaml";
    if (!fs::exists(saved) || a.force) continue;
    YAML::Node old_cfg = YAML::LoadFile(saved.string());
    old_cfg.remove("run");
    old_cfg.remove("description");
    std::vector<std::string> diff;
    yaml_diff(old_cfg, YAML::Load(r.identity), "", diff);
    if (!diff.empty())
      refused.push_back(fmt::format("  {} was made with another config:\n      {}", r.dir.string(), fmt::join(diff, "\n      ")));
  }
  if (!refused.empty())
    throw ConfigError(Origin{"dyt run"}, "",
                      fmt::format("results would be overwritten:\n{}\n  Re-run with --force to discard them and start "
                                  "over, or write elsewhere with --out DIR.",
                                  fmt::join(refused, "\n")));

  cv::setNumThreads(1);  // loader threads do their own parallelism
  install_stop_handlers();
  const json env = environment_info(false, a.argv);
  int64_t done = 0, skipped = 0, diverged = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunSpec& r = runs[i];
    const std::string label = fmt::format("[{}/{} {} {} seed{}{}]", i + 1, runs.size(), e.name, r.variant, r.seed,
                                          r.stage.empty() ? "" : " " + r.stage);
    RunLock lock(r.dir);
    if (!lock.held()) {
      if (a.wait_s > 0) std::fprintf(stderr, "%s locked by another dyt process; waiting up to %.0f s\n", label.c_str(), a.wait_s);
      if (a.wait_s <= 0 || !lock.wait(a.wait_s)) {
        std::fprintf(stderr, "%s skipped: another dyt process is running it (lock %s)\n", label.c_str(),
                     (r.dir / ".lock").c_str());
        ++skipped;
        continue;
      }
    }
    const fs::path summary_path = r.dir / "summary.json";
    if (a.force && fs::exists(r.dir / "config.yaml")) {
      for (const auto& entry : fs::directory_iterator(r.dir))
        if (entry.path().filename() != ".lock") fs::remove_all(entry.path());
    }
    if (fs::exists(summary_path)) {
      json s = read_json(summary_path);
      const std::string st = s.value("status", "");
      if (st == "finished" || st == "diverged") {
        std::fprintf(stderr, "%s done already (%s); reusing it\n", label.c_str(), st.c_str());
        ++done;
        diverged += st == "diverged";
        continue;
      }
    }
    const int64_t threads = r.config.run.threads > 0 ? r.config.run.threads : static_cast<int64_t>(std::thread::hardware_concurrency());
    at::set_num_threads(static_cast<int>(std::max<int64_t>(1, threads)));
    atomic_write(r.dir / "config.yaml", r.resolved_yaml);
    json run_env = env;
    run_env["threads"] = at::get_num_threads();
    atomic_write_json(r.dir / "env.json", run_env);
    RunContext ctx{r};
    ctx.device = resolve_device(r.config.run.device);
    ctx.label = label;
    ctx.stop = &g_stop;
    RunResult res = task_registry().get(r.config.task).run(ctx);
    if (res.status == "interrupted") {
      std::fprintf(stderr,
                   "%s interrupted; progress is checkpointed in %s.\nResume with the same command: dyt run %s%s\n",
                   label.c_str(), r.dir.c_str(), a.experiment.c_str(), a.out.empty() ? "" : (" --out " + a.out).c_str());
      return 130;
    }
    atomic_write_json(summary_path, res.summary);
    ++done;
    diverged += res.status == "diverged";
  }
  if (done > 0) {
    std::string table = write_experiment_table(e, runs, req.out);  // the plan that ran, not a re-read by name
    std::printf("\n%s\n(written to %s/table.{md,csv,tex}; `dyt plot %s` draws its curves)\n", table.c_str(),
                (req.out / e.name).c_str(), e.name.c_str());
    write_results_index(req.out);
  }
  if (diverged) std::fprintf(stderr, "%lld run(s) diverged; they appear as 'diverged @ step N' in the table\n", static_cast<long long>(diverged));
  if (skipped) std::fprintf(stderr, "%lld run(s) skipped because another process holds them; run again later\n", static_cast<long long>(skipped));
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

// ---- task registry -------------------------------------------------------------------------------
namespace {
Registry<TaskType> build_task_registry() {
  Registry<TaskType> r("task");
  r.add("classification", {"supervised image classification (top-1/top-5); fine-tuning / linear probing with init:",
                            run_classification});
  r.add("mae", {"masked-autoencoder pretraining (masked-patch MSE); writes a reconstruction grid", run_mae_pretrain});
  r.add("wav2vec2", {"wav2vec 2.0 self-supervised speech pretraining (contrastive loss in bits)", run_wav2vec2});
  return r;
}
}  // namespace

const Registry<TaskType>& task_registry() {
  static const Registry<TaskType> registry = build_task_registry();
  return registry;
}

}  // namespace dyt
