// Executes planned runs (runner/run/executor.h): the body of `dyt run` between planning and the table.
#include "runner/run/executor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <opencv2/core.hpp>

#include <csignal>
#include <thread>

#include "core/distributed.h"
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

torch::Device resolve_device(const std::string& want, int64_t index) {
  const bool cuda = want == "cuda" || (want == "auto" && torch::cuda::is_available());
  if (!cuda) return torch::kCPU;
  if (!torch::cuda::is_available())
    throw ConfigError(Origin{"--device / run.device"}, "run.device",
                      "CUDA requested but no CUDA device is visible to LibTorch; use --device cpu");
  const int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= n)
    throw ConfigError(Origin{"environment"}, "LOCAL_RANK",
                      fmt::format("this process should use GPU {} (LOCAL_RANK) but {} GPU(s) are visible; start at most "
                                  "{} processes per node (torchrun --nproc-per-node)",
                                  index, n, n));
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

const std::atomic<bool>& stop_requested() { return g_stop; }

std::string RunFolder::status() const {
  if (fs::exists(summary())) return read_json(summary()).value("status", "running");
  return fs::exists(dir) ? "running" : "missing";
}

namespace {

// A data-parallel job: every rank must have planned the same runs with the same configs (the
// same command line, config files and code on every node). Each rank compares its plan with rank
// 0's; a difference on any rank stops every rank with the differences named.
void check_same_plan_on_every_rank(Distributed& dist, const std::vector<RunSpec>& runs) {
  json mine = json::array();
  for (const auto& r : runs)
    mine.push_back({{"dir", fmt::format("{}/{}/seed{}{}", r.experiment, r.variant, r.seed, r.stage.empty() ? "" : "/" + r.stage)},
                    {"config", r.identity}});
  const json first = json::parse(dist.broadcast_text(mine.dump()));
  std::vector<std::string> diff;
  if (first.size() != mine.size()) {
    diff.push_back(fmt::format("plans {} run(s), rank 0 {}", mine.size(), first.size()));
  } else {
    for (size_t i = 0; i < mine.size(); ++i) {
      if (first[i]["dir"] != mine[i]["dir"])
        diff.push_back(fmt::format("run {} writes to {}, rank 0's to {}", i + 1, mine[i]["dir"].get<std::string>(),
                                   first[i]["dir"].get<std::string>()));
      std::vector<std::string> d;
      yaml_diff(YAML::Load(first[i]["config"].get<std::string>()), YAML::Load(mine[i]["config"].get<std::string>()),
                YAML::Node(), "", d);
      for (const auto& x : d) diff.push_back(fmt::format("{}: {} (rank 0 -> this rank)", mine[i]["dir"].get<std::string>(), x));
    }
  }
  const std::vector<std::string> all = dist.gather_text(fmt::format("{}", fmt::join(diff, "\n      ")));
  std::vector<std::string> lines;
  for (size_t r = 0; r < all.size(); ++r)
    if (!all[r].empty()) lines.push_back(fmt::format("  rank {}: {}", r, all[r]));
  if (!lines.empty())
    throw ConfigError(Origin{"dyt run"}, "",
                      fmt::format("the ranks of this job planned different runs or configs:\n{}\n  Every rank must run the "
                                  "same command with the same config files (same checkout on every node).",
                                  fmt::join(lines, "\n")));
}

// The order in which a process takes the plan: whole (variant, seed) units (their stages are
// consecutive in the plan and stay in order), starting at unit `rotate` modulo their number.
std::vector<size_t> plan_order(const std::vector<RunSpec>& runs, int64_t rotate) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < runs.size(); ++i)
    if (i == 0 || runs[i].variant != runs[i - 1].variant || runs[i].seed != runs[i - 1].seed) starts.push_back(i);
  std::vector<size_t> order;
  order.reserve(runs.size());
  for (size_t k = 0; k < starts.size(); ++k) {
    const size_t u = (k + static_cast<size_t>(std::max<int64_t>(0, rotate))) % starts.size();
    const size_t end = u + 1 < starts.size() ? starts[u + 1] : runs.size();
    for (size_t i = starts[u]; i < end; ++i) order.push_back(i);
  }
  return order;
}

}  // namespace

ExecuteReport execute_runs(const Experiment& e, const std::vector<RunSpec>& runs, const ExecuteOptions& a) {
  ExecuteReport rep;
  Distributed* dist = a.dist;
  const bool writes = !dist || dist->rank() == 0;  // the only process that touches run folders
  if (dist) check_same_plan_on_every_rank(*dist, runs);
  // Refuse changed configs before running anything, with the differences spelled out.
  std::vector<std::string> refused;
  for (const auto& r : runs) {
    if (!writes) break;
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
  std::string refusal;
  if (!refused.empty())
    refusal = fmt::format("results would be overwritten:\n{}\n  Re-run with --force to discard them and start over, or "
                          "write elsewhere with --out DIR.",
                          fmt::join(refused, "\n"));
  if (dist) refusal = dist->broadcast_text(refusal);
  if (!refusal.empty()) throw ConfigError(Origin{"dyt run"}, "", refusal);

  cv::setNumThreads(1);  // loader threads do their own parallelism
  install_stop_handlers();
  json env = environment_info(false, a.argv);
  if (dist)
    env["distributed"] = {{"world_size", dist->world()},         {"backend", dist->backend()},
                          {"launcher", dist->env().launcher},    {"local_world_size", dist->env().local_world},
                          {"restart", dist->env().restart}};
  if (a.spread_world > 1) env["spread"] = {{"process", a.rotate}, {"processes", a.spread_world}};
  // The stages of one (variant, seed) run in order in one process: a process that finds a stage
  // locked by another leaves the later stages to that process too (they need its weights), and
  // --spread rotates the plan by whole (variant, seed) units, never into the middle of one.
  std::vector<size_t> order = plan_order(runs, a.rotate);
  std::string skipped_unit;  // variant/seed whose earlier stage another process holds
  for (const size_t i : order) {
    const RunSpec& r = runs[i];
    const std::string label = fmt::format("[{}/{} {} {} seed{}{}]", i + 1, runs.size(), e.name, r.variant, r.seed,
                                          r.stage.empty() ? "" : " " + r.stage);
    const std::string unit = fmt::format("{}/seed{}", r.variant, r.seed);
    if (!r.stage.empty() && unit == skipped_unit) {
      if (writes && a.spread_world <= 1)
        std::fprintf(stderr, "%s skipped: it follows a stage another dyt process is running\n", label.c_str());
      ++rep.skipped;
      continue;
    }
    const RunFolder folder{r.dir};
    const fs::path summary_path = folder.summary();
    // Rank 0 takes the lock and decides: "run", "skip" (locked elsewhere) or the status of a
    // finished run to reuse; the other ranks follow.
    std::unique_ptr<RunLock> lock;
    std::string action = "run";
    if (writes) {
      lock = std::make_unique<RunLock>(r.dir);
      if (!lock->held()) {
        if (a.wait_s > 0) std::fprintf(stderr, "%s locked by another dyt process; waiting up to %.0f s\n", label.c_str(), a.wait_s);
        if (a.wait_s <= 0 || !lock->wait(a.wait_s)) action = "skip";
      }
      if (action == "run" && a.force && fs::exists(folder.config())) {
        for (const auto& entry : fs::directory_iterator(r.dir))
          if (entry.path() != folder.lock()) fs::remove_all(entry.path());
      }
      if (action == "run" && fs::exists(summary_path)) {
        const std::string st = read_json(summary_path).value("status", "");
        if (st == "finished" || st == "diverged") action = st;
      }
    }
    if (dist) action = dist->broadcast_text(action);
    if (action == "skip") {
      if (a.spread_world > 1)
        std::fprintf(stderr, "%s taken by another process of this job\n", label.c_str());
      else if (writes)
        std::fprintf(stderr, "%s skipped: another dyt process is running it (lock %s)\n", label.c_str(),
                     folder.lock().c_str());
      skipped_unit = unit;
      ++rep.skipped;
      continue;
    }
    if (action != "run") {
      if (writes) std::fprintf(stderr, "%s done already (%s); reusing it\n", label.c_str(), action.c_str());
      ++rep.done;
      rep.diverged += action == "diverged";
      continue;
    }
    const int64_t threads = r.config.run.threads > 0 ? r.config.run.threads : static_cast<int64_t>(std::thread::hardware_concurrency());
    at::set_num_threads(static_cast<int>(std::max<int64_t>(1, threads)));
    if (writes) atomic_write(folder.config(), r.resolved_yaml);
    json run_env = env;
    run_env["threads"] = at::get_num_threads();
    if (writes) atomic_write_json(folder.env(), run_env);
    RunContext ctx{r};
    ctx.device = resolve_device(r.config.run.device, a.device_index);
    if (dist && ctx.device != dist->device())
      throw ConfigError(Origin{"dyt run"}, "run.device",
                        fmt::format("run {} wants {} but this job's process group is on {}; give every run of a "
                                    "data-parallel job the same run.device",
                                    r.dir.string(), ctx.device.str(), dist->device().str()));
    ctx.label = label;
    ctx.stop = &g_stop;
    if (dist) ctx.rank = dist->rank(), ctx.world = dist->world(), ctx.dist = dist;
    RunResult res = run_task(ctx);
    if (res.status == "interrupted") {
      if (writes)
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
