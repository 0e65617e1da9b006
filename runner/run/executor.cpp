// Executes planned runs (runner/run/executor.h): the body of `dyt run` between planning and the table.
#include "runner/run/executor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <opencv2/core.hpp>

#include <csignal>
#include <thread>

#include "core/io.h"
#include "runner/cli/env.h"
#include "runner/experiment/config.h"
#include "runner/run/run_folder.h"
#include "runner/tasks/task.h"

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_stop_signal(int sig) {
  g_stop.store(true);
  std::signal(sig, SIG_DFL);  // a second signal ends the process at once
}

// Differences between two YAML trees as "key: old -> new" lines. A key the old config lacks whose
// new value is the key's default (`defaults`, the same path) is no difference: it is a setting
// added to the suite after the run was made, which that run used at its default.
void yaml_diff(const YAML::Node& a, const YAML::Node& b, const YAML::Node& defaults, const std::string& prefix,
               std::vector<std::string>& out) {
  auto text = [](const YAML::Node& n) {
    if (!n.IsDefined()) return std::string("(absent)");
    std::string s = to_yaml_string(n);
    std::replace(s.begin(), s.end(), '\n', ' ');
    return s;
  };
  // (A missing key gives a "zombie" node whose type must not be asked: IsDefined first.)
  if (a.IsDefined() && b.IsDefined() && a.IsMap() && b.IsMap()) {
    std::vector<std::string> keys;
    for (const auto& kv : a) keys.push_back(kv.first.Scalar());
    for (const auto& kv : b)
      if (std::find(keys.begin(), keys.end(), kv.first.Scalar()) == keys.end()) keys.push_back(kv.first.Scalar());
    for (const auto& k : keys) {
      const YAML::Node& ca = a;
      const YAML::Node& cb = b;
      const YAML::Node& cd = defaults;
      yaml_diff(ca[k], cb[k], cd.IsDefined() && cd.IsMap() ? cd[k] : YAML::Node(), prefix.empty() ? k : prefix + "." + k,
                out);
    }
    return;
  }
  if (!a.IsDefined() && defaults.IsDefined() && text(b) == text(defaults)) return;
  if (text(a) != text(b)) out.push_back(fmt::format("{}: {} -> {}", prefix, text(a), text(b)));
}

}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
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

const std::atomic<bool>& stop_requested() { return g_stop; }

std::string RunFolder::status() const {
  if (fs::exists(summary())) return read_json(summary()).value("status", "running");
  return fs::exists(dir) ? "running" : "missing";
}

ExecuteReport execute_runs(const Experiment& e, const std::vector<RunSpec>& runs, const ExecuteOptions& a) {
  ExecuteReport rep;
  // Refuse changed configs before running anything, with the differences spelled out.
  std::vector<std::string> refused;
  for (const auto& r : runs) {
    const fs::path saved = RunFolder{r.dir}.config();
    if (!fs::exists(saved) || a.force) continue;
    YAML::Node old_cfg = YAML::LoadFile(saved.string());
    old_cfg.remove("run");
    old_cfg.remove("description");
    ExperimentConfig defaults;  // of the same task and model type, for settings added since
    defaults.task = r.config.task, defaults.model_type = r.config.model_type;
    const YAML::Node def = encode_config([&](FieldVisitor& v) { defaults.visit(v); });
    std::vector<std::string> diff;
    yaml_diff(old_cfg, YAML::Load(r.identity), def, "", diff);
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
    for (size_t i = 0; i < runs.size(); ++i) {
    const RunSpec& r = runs[i];
    const std::string label = fmt::format("[{}/{} {} {} seed{}{}]", i + 1, runs.size(), e.name, r.variant, r.seed,
                                          r.stage.empty() ? "" : " " + r.stage);
    RunLock lock(r.dir);
    if (!lock.held()) {
      if (a.wait_s > 0) std::fprintf(stderr, "%s locked by another dyt process; waiting up to %.0f s\n", label.c_str(), a.wait_s);
      if (a.wait_s <= 0 || !lock.wait(a.wait_s)) {
        std::fprintf(stderr, "%s skipped: another dyt process is running it (lock %s)\n", label.c_str(),
                     RunFolder{r.dir}.lock().c_str());
        ++rep.skipped;
        continue;
      }
    }
    const RunFolder folder{r.dir};
    const fs::path summary_path = folder.summary();
    if (a.force && fs::exists(folder.config())) {
      for (const auto& entry : fs::directory_iterator(r.dir))
        if (entry.path() != folder.lock()) fs::remove_all(entry.path());
    }
    if (fs::exists(summary_path)) {
      json s = read_json(summary_path);
      const std::string st = s.value("status", "");
      if (st == "finished" || st == "diverged") {
        std::fprintf(stderr, "%s done already (%s); reusing it\n", label.c_str(), st.c_str());
        ++rep.done;
        rep.diverged += st == "diverged";
        continue;
      }
    }
    const int64_t threads = r.config.run.threads > 0 ? r.config.run.threads : static_cast<int64_t>(std::thread::hardware_concurrency());
    at::set_num_threads(static_cast<int>(std::max<int64_t>(1, threads)));
    const bool writes = a.rank == 0;
    if (writes) atomic_write(folder.config(), r.resolved_yaml);
    json run_env = env;
    run_env["threads"] = at::get_num_threads();
    if (writes) atomic_write_json(folder.env(), run_env);
    RunContext ctx{r};
    ctx.device = resolve_device(r.config.run.device);
    ctx.label = label;
    ctx.stop = &g_stop;
    ctx.rank = a.rank, ctx.world = a.world;
    RunResult res = run_task(ctx);
    if (res.status == "interrupted") {
      std::fprintf(stderr, "%s interrupted; progress is checkpointed in %s.\nResume with the same command: %s\n",
                   label.c_str(), r.dir.c_str(), a.resume_command.c_str());
      rep.interrupted = true;
      return rep;
    }
    if (writes) atomic_write_json(summary_path, res.summary);
    ++rep.done;
    rep.diverged += res.status == "diverged";
  }
  return rep;
}

}  // namespace dyt
