// Figures with gnuplot: curves per variant with seed bands, analysis figures, sweeps (plot.h).
#include "runner/report/plot.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <torch/torch.h>

#include "runner/experiment/experiment.h"
#include "core/io.h"
#include "runner/report/tables.h"
#include "runner/run/run_folder.h"

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

bool have_gnuplot() {
  static const bool yes = std::system("command -v gnuplot > /dev/null 2>&1") == 0;
  return yes;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  return out + "\"";
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) s.replace(pos, from.size(), to);
  return s;
}

}  // namespace

FigureFiles write_figure(const fs::path& dir, const Figure& f, std::string* note) {
  fs::create_directories(dir);
  FigureFiles out;
  out.dat = dir / (f.name + ".dat");
  out.gp = dir / (f.name + ".gp");
  out.png = dir / (f.name + ".png");
  out.svg = dir / (f.name + ".svg");
  atomic_write(out.dat, f.data);
  const std::string body = fmt::format(
      "set title {}\nset xlabel {}\nset ylabel {}\nset key {}\nset grid\n{}\n{}\n", quote(f.title),
      quote(f.xlabel), quote(f.ylabel), f.key.empty() ? "top right" : f.key, f.extra,
      replace_all(f.plot, "DATA", quote(f.name + ".dat")));
  const std::string script = fmt::format(
      "# {}: render with `gnuplot {}` in this folder (writes the .png and .svg)\n"
      "set terminal pngcairo size 960,600 noenhanced font \"sans,11\"\nset output {}\n{}"
      "set terminal svg size 960,600 noenhanced dynamic\nset output {}\nreplot\n",
      f.title, f.name + ".gp", quote(f.name + ".png"), body, quote(f.name + ".svg"));
  atomic_write(out.gp, script);
  if (!have_gnuplot()) {
    if (note) *note = "gnuplot not found: wrote the .gp scripts and .dat data; install gnuplot (apt-get install gnuplot-nox) and run them";
    return out;
  }
  const std::string cmd = fmt::format("cd {} && gnuplot {} 2>&1", quote(dir.string()), quote(f.name + ".gp"));
  std::string output;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) output += buf;
    const int rc = ::pclose(p);
    out.rendered = rc == 0 && fs::exists(out.png) && fs::file_size(out.png) > 0;
  }
  if (!out.rendered && note) *note = fmt::format("gnuplot failed on {}: {}", out.gp.string(), output);
  return out;
}

std::vector<BandPoint> aggregate_band(const std::vector<std::vector<std::pair<double, double>>>& curves) {
  std::map<double, std::vector<double>> at;
  for (const auto& c : curves)
    for (const auto& [x, y] : c) at[x].push_back(y);
  std::vector<BandPoint> out;
  for (const auto& [x, ys] : at) {
    BandPoint p{x, 0, ys[0], ys[0], static_cast<int>(ys.size())};
    for (double y : ys) p.mean += y / ys.size(), p.min = std::min(p.min, y), p.max = std::max(p.max, y);
    out.push_back(p);
  }
  return out;
}

namespace {

// One series per table column: label -> curves (one per seed).
using Series = std::map<std::string, std::vector<std::vector<std::pair<double, double>>>>;

Figure band_figure(const std::string& name, const std::string& title, const std::string& xlabel, const std::string& ylabel,
                   const Series& series, const std::vector<std::string>& order) {
  Figure f;
  f.name = name, f.title = title, f.xlabel = xlabel, f.ylabel = ylabel;
  std::vector<std::string> parts;
  int index = 0;
  for (const auto& label : order) {
    auto it = series.find(label);
    if (it == series.end()) continue;
    auto band = aggregate_band(it->second);
    f.data += fmt::format("# {}: x mean min max n\n", label);
    for (const auto& p : band) f.data += fmt::format("{} {} {} {} {}\n", p.x, p.mean, p.min, p.max, p.n);
    f.data += "\n\n";
    const int color = index + 1;
    parts.push_back(fmt::format("DATA index {} using 1:3:4 with filledcurves lc {} fs transparent solid 0.2 notitle", index, color));
    parts.push_back(fmt::format("DATA index {} using 1:2 with lines lw 2 lc {} title {}", index, color,
                                quote(label + fmt::format(" (n={})", it->second.size()))));
    ++index;
  }
  f.plot = "plot " + fmt::format("{}", fmt::join(parts, ", \\\n     "));
  return f;
}

}  // namespace

namespace {

std::string safe_name(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return s;
}

// Fig. 2/4, Fig. 8 and sweep figures, from whatever the runs recorded.
std::vector<FigureFiles> analysis_figures(const Experiment& e, const std::vector<RunSpec>& runs, const fs::path& dir) {
  std::vector<FigureFiles> out;
  std::string note;
  std::set<std::string> mapped;
  for (const auto& spec : runs) {
    // LN (or DyT) input -> output scatter for up to four layers spread over the depth.
    const fs::path mf = spec.dir / "norm_mapping.safetensors";
    if (fs::exists(mf) && mapped.insert(spec.variant).second) {
      SafeTensorsFile f = read_safetensors(mf);
      std::vector<std::string> layers;
      for (const auto& t : f.tensors)
        if (t.name.size() > 2 && t.name.compare(t.name.size() - 2, 2, ".x") == 0) layers.push_back(t.name.substr(0, t.name.size() - 2));
      std::vector<std::string> chosen;
      for (size_t k = 0; k < 4 && !layers.empty(); ++k) {
        const std::string& l = layers[k * (layers.size() - 1) / 3];
        if (std::find(chosen.begin(), chosen.end(), l) == chosen.end()) chosen.push_back(l);
      }
      for (const auto& layer : chosen) {
        torch::Tensor x = *f.find(layer + ".x"), y = *f.find(layer + ".y"), c = *f.find(layer + ".channel");
        // The two channels with the largest mean |x| are drawn apart: the "extreme channels".
        const int64_t C = c.max().item<int64_t>() + 1;
        torch::Tensor sum = torch::zeros({C}).index_add_(0, c, x.abs()), cnt = torch::zeros({C}).index_add_(0, c, torch::ones_like(x));
        torch::Tensor top = std::get<1>((sum / cnt.clamp_min(1)).topk(std::min<int64_t>(2, C)));
        Figure fig;
        fig.name = safe_name("mapping_" + spec.variant + "_" + layer);
        fig.title = fmt::format("{} {}: {} input vs output (before the affine)", e.name, spec.variant, layer);
        fig.xlabel = "input x", fig.ylabel = "normalized output";
        std::string normal, extreme;
        auto xa = x.accessor<float, 1>(), ya = y.accessor<float, 1>();
        auto ca = c.accessor<int64_t, 1>();
        std::set<int64_t> ext;
        for (int64_t i = 0; i < top.numel(); ++i) ext.insert(top[i].item<int64_t>());
        for (int64_t i = 0; i < x.numel(); ++i) (ext.count(ca[i]) ? extreme : normal) += fmt::format("{} {}\n", xa[i], ya[i]);
        fig.data = "# other channels: x y\n" + normal + "\n\n# two most extreme channels: x y\n" + extreme;
        fig.plot = "plot DATA index 0 using 1:2 with dots lc rgb \"#3060a0\" title \"channels\", "
                   "DATA index 1 using 1:2 with points pt 7 ps 0.3 lc rgb \"#d03020\" title \"2 most extreme channels\"";
        out.push_back(write_figure(dir, fig, &note));
      }
    }
    // Fig. 8: alpha against 1 / std of the layer's input, over training, one series per layer.
    const fs::path m = RunFolder{spec.dir}.metrics();
    if (!fs::exists(m) || spec.seed != runs.front().seed) continue;
    std::map<std::string, std::string> per_layer;
    std::vector<std::string> layer_order;
    nlohmann::json last;
    for (const auto& j : read_jsonl(m)) {
      if (j.value("split", "") != "norms") continue;
      last = j;
      for (const auto& l : j["layers"]) {
        if (!l.contains("alpha") || !l["input_std"].is_number()) continue;
        const std::string name = l["name"];
        if (!per_layer.count(name)) layer_order.push_back(name);
        per_layer[name] += fmt::format("{} {} {}\n", 1.0 / l["input_std"].get<double>(), l["alpha"].get<double>(), j["step"].get<int64_t>());
      }
    }
    if (layer_order.empty()) continue;
    Figure fig;
    fig.name = safe_name("alpha_vs_invstd_" + spec.variant);
    fig.title = fmt::format("{} {}: alpha vs 1/std of the input (points every {} steps; lines join a layer's)", e.name,
                            spec.variant, spec.config.train.track_norms_every);
    fig.xlabel = "1 / std(input)", fig.ylabel = "alpha";
    std::vector<std::string> parts;
    for (size_t i = 0; i < layer_order.size(); ++i) {
      fig.data += "# " + layer_order[i] + ": 1/std alpha step\n" + per_layer[layer_order[i]] + "\n\n";
      parts.push_back(fmt::format("DATA index {} using 1:2 with linespoints pt 7 ps 0.4 lc palette frac {} title {}", i,
                                  layer_order.size() > 1 ? static_cast<double>(i) / (layer_order.size() - 1) : 0.0,
                                  quote(i == 0 || i + 1 == layer_order.size() ? layer_order[i] : "")));
    }
    fig.extra = "set palette defined (0 \"#2040c0\", 1 \"#e04020\")\nunset colorbox";
    fig.plot = "plot " + fmt::format("{}", fmt::join(parts, ", "));
    out.push_back(write_figure(dir, fig, &note));
  }
  // Sweeps: the final metric against the first swept key, one line per value of the second.
  if (!e.sweep_points.empty()) {
    std::map<std::string, std::map<double, std::vector<double>>> series;
    std::string xkey, skey, metric;
    for (const auto& spec : runs) {
      auto it = e.sweep_points.find(spec.variant);
      if (it == e.sweep_points.end() || !fs::exists(RunFolder{spec.dir}.summary())) continue;
      const auto& vals = it->second.values;
      xkey = vals[0].first;
      metric = spec.config.report.metric;
      std::string label = spec.config.report.column.empty() ? "all" : spec.config.report.column;
      nlohmann::json s = read_json(RunFolder{spec.dir}.summary());
      if (s.value("status", "") != "finished" || !s.contains(metric)) continue;
      double x = 0;
      try {
        x = std::stod(vals[0].second.Scalar());
      } catch (const std::exception&) {
        continue;
      }
      series[label][x].push_back(s[metric].get<double>());
    }
    if (!series.empty()) {
      Figure fig;
      fig.name = safe_name("sweep_" + metric);
      fig.title = fmt::format("{}: final {} vs {} (mean over seeds, min-max bars; diverged runs absent)", e.name, metric, xkey);
      fig.xlabel = xkey, fig.ylabel = metric;
      std::vector<std::string> parts;
      int i = 0;
      for (const auto& [label, pts] : series) {
        fig.data += "# " + label + ": x mean min max n\n";
        for (const auto& [x, ys] : pts) {
          double mean = 0, lo = ys[0], hi = ys[0];
          for (double y : ys) mean += y / ys.size(), lo = std::min(lo, y), hi = std::max(hi, y);
          fig.data += fmt::format("{} {} {} {} {}\n", x, mean, lo, hi, ys.size());
        }
        fig.data += "\n\n";
        parts.push_back(fmt::format("DATA index {} using 1:2:3:4 with yerrorlines lw 2 title {}", i++, quote(label)));
      }
      fig.extra = "set logscale x";
      fig.plot = "plot " + fmt::format("{}", fmt::join(parts, ", "));
      out.push_back(write_figure(dir, fig, &note));
    }
  }
  return out;
}

}  // namespace

std::vector<FigureFiles> plot_experiment(const std::string& experiment, const fs::path& out_root, std::string* note) {
  Experiment e = load_experiment(experiment);
  PlanRequest req;
  req.out = out_root;
  std::vector<RunSpec> runs = plan_runs(e, req);
  Series train, val;
  std::vector<std::string> order;
  std::string metric;
  std::optional<bool> higher;  // the metric's direction, as the runs' summaries declare it
  for (const auto& spec : runs) {
    if (!spec.stage.empty()) {
      const std::string want = spec.config.report.stage.empty() ? spec.stages.back() : spec.config.report.stage;
      if (spec.stage != want) continue;
    }
    const fs::path m = RunFolder{spec.dir}.metrics();
    if (!fs::exists(m)) continue;
    const std::string row = spec.config.report.row.empty() ? "" : spec.config.report.row + ": ";
    const std::string label = row + (spec.config.report.column.empty() ? spec.variant : spec.config.report.column);
    if (std::find(order.begin(), order.end(), label) == order.end()) order.push_back(label);
    metric = spec.config.report.metric;
    const std::string key = metric == "val_loss" ? "loss" : metric;
    std::vector<std::pair<double, double>> t, v;
    for (const auto& j : read_jsonl(m)) {
      if (j.value("split", "") == "train" && j.contains("loss")) t.emplace_back(j["step"].get<double>(), j["loss"].get<double>());
      if (j.value("split", "") == "val" && j.contains(key)) v.emplace_back(j["epoch"].get<double>() + 1, j[key].get<double>());
    }
    train[label].push_back(t);
    val[label].push_back(v);
    if (!higher && fs::exists(RunFolder{spec.dir}.summary())) higher = metric_higher_is_better(read_json(RunFolder{spec.dir}.summary()), metric);
  }
  std::vector<FigureFiles> out;
  if (order.empty()) {
    if (note) *note = fmt::format("no run of {} has metrics yet under {}; run it first", e.name, out_root.string());
    return out;
  }
  const fs::path dir = out_root / e.name / "plots";
  std::string n;
  out.push_back(write_figure(dir, band_figure("train_loss", e.name + ": training loss", "step", "loss (train)", train, order), &n));
  Figure vf = band_figure("val_" + metric, e.name + ": validation " + metric, "epoch", metric, val, order);
  const bool up = higher ? *higher : metric.find("loss") == std::string::npos;  // old runs: the name rule
  vf.key = up ? "bottom right" : "top right";  // the legend where the curves are not
  out.push_back(write_figure(dir, vf, &n));
  for (auto& f : analysis_figures(e, runs, dir)) out.push_back(f);
  if (note) *note = n;
  return out;
}

}  // namespace dyt
