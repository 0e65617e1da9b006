// Figures with gnuplot: curves per variant with seed bands, analysis figures, sweeps (plot.h).
#include "runner/report/plot.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
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
#include "runner/train/norm_probes.h"

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

bool have_gnuplot() {
  static const bool yes = std::system("command -v gnuplot > /dev/null 2>&1") == 0;
  return yes;
}

// A gnuplot double-quoted string; a newline becomes gnuplot's "\n" (a line break in titles).
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
  }
  return out + "\"";
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) s.replace(pos, from.size(), to);
  return s;
}

const char* kGrey = "#808080";

}  // namespace

std::string series_style(int i) {
  static const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  static const int dashes[] = {1, 2, 3};  // solid, dashed, dotted
  return fmt::format("lc rgb \"{}\" dt {}", colours[i % 10], dashes[(i / 10) % 3]);
}

void natural_sort(std::vector<std::string>& labels) {
  auto split = [](const std::string& s) {
    std::vector<std::pair<bool, std::string>> parts;  // (is number, text)
    for (size_t i = 0; i < s.size();) {
      const bool num = std::isdigit(static_cast<unsigned char>(s[i])) != 0;
      size_t j = i;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) != 0 || (num && s[j] == '.')) == num) ++j;
      parts.emplace_back(num, s.substr(i, j - i));
      i = j;
    }
    return parts;
  };
  std::stable_sort(labels.begin(), labels.end(), [&](const std::string& a, const std::string& b) {
    auto pa = split(a), pb = split(b);
    for (size_t i = 0; i < std::min(pa.size(), pb.size()); ++i) {
      if (pa[i].first && pb[i].first) {
        const double x = std::atof(pa[i].second.c_str()), y = std::atof(pb[i].second.c_str());
        if (x != y) return x < y;
      } else if (pa[i].second != pb[i].second) {
        return pa[i].second < pb[i].second;
      }
    }
    return pa.size() < pb.size();
  });
}

std::string wrap_title(const std::string& title, int width_px) {
  // pngcairo's "sans,11" sets about 7.7 px per character of these titles (a 119-character title
  // spanned 910 px), and the title is centred on the plot area, not the canvas: keep 10 % spare.
  const size_t max_chars = std::max<size_t>(20, static_cast<size_t>(width_px / 8.5));
  if (title.size() <= max_chars) return title;
  const size_t lines = (title.size() + max_chars - 1) / max_chars;
  std::string out;
  size_t start = 0;
  for (size_t line = 1; line < lines; ++line) {
    // Break at the space nearest this line's share of the rest, so the lines come out even.
    const size_t target = start + (title.size() - start) / (lines - line + 1);
    size_t best = std::string::npos;
    for (size_t i = start + 1; i < title.size() && i <= start + max_chars; ++i) {
      if (title[i] != ' ') continue;
      const auto dist = [&](size_t k) { return k > target ? k - target : target - k; };
      if (best == std::string::npos || dist(i) < dist(best)) best = i;
    }
    if (best == std::string::npos) break;  // one word longer than a line: leave it
    out += title.substr(start, best - start) + "\n";
    start = best + 1;
  }
  return out + title.substr(start);
}

std::string key_display(const std::string& key) {
  static const std::map<std::string, std::string> names = {
      {"model.norm.alpha_init", "alpha0 (initial alpha of DyT)"},
      {"model.embed_dim", "width (embedding dimension)"},
      {"model.depth", "depth (blocks)"},
      {"optim.lr", "peak learning rate"},
      {"optim.blr", "base learning rate (lr x 256 / batch)"},
      {"schedule.epochs", "training epochs"},
      {"model.drop_path_rate", "drop-path rate"}};
  auto it = names.find(key);
  return it == names.end() ? key : it->second + " [" + key + "]";
}

FigureFiles write_figure(const fs::path& dir, const Figure& f, std::string* note) {
  fs::create_directories(dir);
  FigureFiles out;
  out.dat = dir / (f.name + ".dat");
  out.gp = dir / (f.name + ".gp");
  out.png = dir / (f.name + ".png");
  out.svg = dir / (f.name + ".svg");
  out.pdf = dir / (f.name + ".pdf");
  atomic_write(out.dat, f.data);
  std::string body =
      "reset\nset grid lc rgb \"#d8d8d8\"\nset border lc rgb \"#404040\"\nset tics nomirror\nset offsets graph 0, 0, 0.04, 0.04\n";
  if (!f.panels) {
    body += fmt::format("set title {}\nset xlabel {}\nset ylabel {}\nset key {}\n", quote(wrap_title(f.title, f.width)), quote(f.xlabel),
                        quote(f.ylabel), f.key.empty() ? "outside bottom center horizontal Left reverse height 1.5" : f.key);
  }
  body += f.extra + "\n" + replace_all(f.plot, "DATA", quote(f.name + ".dat")) + "\n";
  std::string indented;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) indented += "  " + line + "\n";
  // One body, three outputs: edit the body once and `gnuplot NAME.gp` redraws all of them.
  const double win = f.width / 160.0, hin = f.height / 160.0;  // the PDF at print size (6 x 3.75 in)
  const std::string script = fmt::format(
      "# {}\n# Render with `gnuplot {}` in this folder: writes {}.png, .svg and .pdf from {}.\n"
      "do for [fmt in \"png svg pdf\"] {{\n"
      "  if (fmt eq \"png\") {{ set terminal pngcairo size {},{} noenhanced font \"sans,11\" }}\n"
      "  if (fmt eq \"svg\") {{ set terminal svg size {},{} noenhanced dynamic font \"sans,11\" }}\n"
      "  if (fmt eq \"pdf\") {{ set terminal pdfcairo size {:.2f}in,{:.2f}in noenhanced font \"sans,7\" }}\n"
      "  set output {}.fmt\n{}  set output\n}}\n",
      f.title, f.name + ".gp", f.name, f.name + ".dat", f.width, f.height, f.width, f.height, win, hin,
      quote(f.name + "."), indented);
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
    out.rendered = rc == 0 && fs::exists(out.png) && fs::file_size(out.png) > 0 && fs::exists(out.pdf);
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

// Integer ticks on an epoch axis running to `last`.
std::string epoch_tics(double last) {
  const int step = std::max(1, static_cast<int>(std::ceil(last / 10.0)));
  return fmt::format("set xtics {}\nset format x \"%.0f\"\nset xrange [0:{}]", step, std::ceil(last));
}

// A chance level as a grey dashed line with its own legend entry.
std::string chance_part(double level, const std::string& label) {
  return fmt::format("{} with lines lw 1.5 lc rgb \"{}\" dt 2 title {}", level, kGrey, quote(label));
}

// The seeds behind a figure's series, said once: "mean of 3 seeds, band: min-max".
std::string seeds_note(const Series& series) {
  std::set<size_t> n;
  for (const auto& [label, curves] : series) n.insert(curves.size());
  if (n.size() == 1 && *n.begin() == 1) return "one seed";
  if (n.size() == 1) return fmt::format("mean of {} seeds, band: min to max", *n.begin());
  return "mean over seeds (n in the legend), band: min to max";
}

// `points`: mark each value (evaluations per epoch are discrete; one of them alone still shows).
Figure band_figure(const std::string& name, const std::string& title, const std::string& xlabel, const std::string& ylabel,
                   const Series& series, const std::vector<std::string>& order, bool points = false) {
  Figure f;
  f.name = name, f.xlabel = xlabel, f.ylabel = ylabel;
  f.title = title + " (" + seeds_note(series) + ")";
  std::set<size_t> counts;
  for (const auto& [label, curves] : series) counts.insert(curves.size());
  std::vector<std::string> parts;
  int index = 0;
  for (const auto& label : order) {
    auto it = series.find(label);
    if (it == series.end()) continue;
    auto band = aggregate_band(it->second);
    f.data += fmt::format("# {}: x mean min max n\n", label);
    for (const auto& p : band) f.data += fmt::format("{} {} {} {} {}\n", p.x, p.mean, p.min, p.max, p.n);
    f.data += "\n\n";
    const std::string style = series_style(index);
    const std::string colour = style.substr(0, style.find(" dt"));
    if (it->second.size() > 1)
      parts.push_back(fmt::format("DATA index {} using 1:3:4 with filledcurves {} fs transparent solid 0.15 noborder notitle", index, colour));
    parts.push_back(fmt::format("DATA index {} using 1:2 with {} lw 2 {} title {}", index,
                                points ? "linespoints pt 7 ps 0.6" : "lines", style,
                                quote(counts.size() > 1 ? label + fmt::format(" (n={})", it->second.size()) : label)));
    ++index;
  }
  f.plot = "plot " + fmt::format("{}", fmt::join(parts, ", \\\n     "));
  return f;
}

std::string safe_name(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return s;
}

// What the runs' summaries declare about a metric (display name, chance level).
struct MetricFacts {
  std::string base, display;
  std::optional<double> chance;
  std::string chance_label;
  std::optional<bool> higher;
};
MetricFacts metric_facts(const json& summary, const std::string& metric) {
  MetricFacts m;
  const std::string base = base_metric(metric);
  m.base = base;
  if (summary.contains("metrics") && summary["metrics"].is_array())
    for (const auto& info : summary["metrics"]) {
      if (info.value("name", "") != base) continue;
      m.display = info.value("display", base);
      if (info.contains("chance") && info["chance"].is_number()) m.chance = info["chance"].get<double>();
      m.chance_label = info.value("chance_label", "chance");
      if (info.contains("higher_is_better")) m.higher = info["higher_is_better"].get<bool>();
    }
  if (m.display.empty()) m.display = base;
  return m;
}

// Fig. 2/4 of the paper: what a norm layer does to its inputs, for up to four layers spread over
// the depth, side by side, each with the fitted a * tanh(b x).
std::optional<Figure> mapping_figure(const Experiment& e, const RunSpec& spec, const fs::path& file) {
  SafeTensorsFile f = read_safetensors(file);
  std::vector<std::string> layers;
  for (const auto& t : f.tensors)
    if (t.name.size() > 2 && t.name.compare(t.name.size() - 2, 2, ".x") == 0) layers.push_back(t.name.substr(0, t.name.size() - 2));
  if (layers.empty()) return std::nullopt;
  std::vector<std::string> chosen;
  for (size_t k = 0; k < 4; ++k) {
    const std::string& l = layers[k * (layers.size() - 1) / 3];
    if (std::find(chosen.begin(), chosen.end(), l) == chosen.end()) chosen.push_back(l);
  }
  Figure fig;
  fig.name = safe_name("mapping_" + spec.variant);
  fig.title = fmt::format("{} ({}): norm-layer input vs output before the affine part", e.name, spec.variant);
  fig.panels = true;
  fig.width = 400 * static_cast<int>(chosen.size()), fig.height = 420;
  std::string body = fmt::format("set multiplot layout 1,{} title {}\nset key bottom right Left reverse\n", chosen.size(),
                                 quote(wrap_title(fig.title, fig.width)));
  int block = 0;
  for (size_t li = 0; li < chosen.size(); ++li) {
    const std::string& layer = chosen[li];
    torch::Tensor x = *f.find(layer + ".x"), y = *f.find(layer + ".y"), c = *f.find(layer + ".channel");
    // The two channels with the largest mean |x| are drawn apart: the "extreme channels".
    const int64_t C = c.max().item<int64_t>() + 1;
    torch::Tensor sum = torch::zeros({C}).index_add_(0, c, x.abs()), cnt = torch::zeros({C}).index_add_(0, c, torch::ones_like(x));
    torch::Tensor top = std::get<1>((sum / cnt.clamp_min(1)).topk(std::min<int64_t>(2, C)));
    std::set<int64_t> ext;
    for (int64_t i = 0; i < top.numel(); ++i) ext.insert(top[i].item<int64_t>());
    std::string normal, extreme, curve;
    auto xa = x.accessor<float, 1>(), ya = y.accessor<float, 1>();
    auto ca = c.accessor<int64_t, 1>();
    for (int64_t i = 0; i < x.numel(); ++i) (ext.count(ca[i]) ? extreme : normal) += fmt::format("{} {}\n", xa[i], ya[i]);
    const TanhFit fit = fit_tanh(x.to(torch::kDouble), y.to(torch::kDouble));
    const double lo = x.min().item<double>(), hi = x.max().item<double>();
    for (int k = 0; k <= 200; ++k) {
      const double xv = lo + (hi - lo) * k / 200.0;
      curve += fmt::format("{} {}\n", xv, fit.a * std::tanh(fit.b * xv));
    }
    fig.data += fmt::format("# {} other channels: x y\n{}\n\n# {} two most extreme channels: x y\n{}\n\n# {} fit: x a*tanh(b*x)\n{}\n\n",
                            layer, normal, layer, extreme, layer, curve);
    body += fmt::format(
        "set title {}\nset xlabel \"input x\"\nset ylabel {}\n"
        "plot DATA index {} using 1:2 with dots lc rgb \"#3060a0\" title \"channels\", "
        "DATA index {} using 1:2 with points pt 7 ps 0.25 lc rgb \"#d03020\" title \"2 extreme channels\", "
        "DATA index {} using 1:2 with lines lw 2 lc rgb \"#202020\" title {}\n",
        quote(layer), quote(li == 0 ? "output (normalised, before the affine)" : ""), block, block + 1, block + 2,
        quote(fmt::format("{:.2f} tanh({:.2f} x)", fit.a, fit.b)));
    block += 3;
  }
  fig.plot = body + "unset multiplot";
  return fig;
}

// Fig. 8 of the paper: alpha and 1/std of each DyT layer's input over training (left), and the
// final alpha against the final 1/std across layers with the least-squares line (right).
std::optional<Figure> alpha_tracking_figure(const Experiment& e, const RunSpec& spec) {
  std::map<std::string, std::string> per_layer;
  std::vector<std::string> layer_order;
  json last;
  for (const auto& j : read_jsonl(RunFolder{spec.dir}.metrics())) {
    if (j.value("split", "") != "norms") continue;
    bool any = false;
    for (const auto& l : j["layers"]) {
      if (!l.contains("alpha") || !l["input_std"].is_number()) continue;
      const std::string name = l["name"];
      if (!per_layer.count(name)) layer_order.push_back(name);
      per_layer[name] += fmt::format("{} {} {}\n", j["step"].get<int64_t>(), l["alpha"].get<double>(), 1.0 / l["input_std"].get<double>());
      any = true;
    }
    if (any) last = j;
  }
  if (layer_order.empty()) return std::nullopt;
  Figure fig;
  fig.name = safe_name("alpha_tracking_" + spec.variant);
  fig.title = fmt::format("{} ({}, seed {}): DyT's alpha against 1/std of its input (Fig. 8)", e.name, spec.variant, spec.seed);
  fig.panels = true;
  fig.width = 1280, fig.height = 520;
  const size_t L = layer_order.size();
  for (size_t i = 0; i < L; ++i) fig.data += "# " + layer_order[i] + ": step alpha 1/std\n" + per_layer[layer_order[i]] + "\n\n";
  std::vector<double> xs, ys;
  std::string finals = "# final 1/std alpha layer\n";
  for (const auto& l : last["layers"]) {
    if (!l.contains("alpha") || !l["input_std"].is_number()) continue;
    xs.push_back(1.0 / l["input_std"].get<double>()), ys.push_back(l["alpha"].get<double>());
    finals += fmt::format("{} {} {}\n", xs.back(), ys.back(), l["name"].get<std::string>());
  }
  double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0;
  for (size_t i = 0; i < xs.size(); ++i) mx += xs[i] / xs.size(), my += ys[i] / ys.size();
  for (size_t i = 0; i < xs.size(); ++i)
    sxx += (xs[i] - mx) * (xs[i] - mx), sxy += (xs[i] - mx) * (ys[i] - my), syy += (ys[i] - my) * (ys[i] - my);
  const double slope = sxx > 0 ? sxy / sxx : 0, r = sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : NAN;
  fig.data += finals + "\n\n";
  const size_t finals_index = L;
  std::string body = fmt::format(
      "set multiplot layout 1,2 title {}\n"
      "set palette defined (0 \"#2040c0\", 1 \"#e04020\")\nunset colorbox\n"
      "set title \"alpha (solid) and 1/std of the input (dashed) over training; blue: first layer, red: last\"\n"
      "set xlabel \"training step (optimizer updates)\"\nset ylabel \"alpha, 1/std(input)\"\nset key top right\n",
      quote(wrap_title(fig.title, fig.width)));
  std::vector<std::string> parts;
  for (size_t i = 0; i < L; ++i) {
    const double frac = L > 1 ? static_cast<double>(i) / (L - 1) : 0.0;
    parts.push_back(fmt::format("DATA index {} using 1:2 with lines lw 1.5 lc palette frac {:.3f} title {}", i, frac,
                                quote(i == 0 ? "alpha" : "")));
    parts.push_back(fmt::format("DATA index {} using 1:3 with lines lw 1 dt 2 lc palette frac {:.3f} title {}", i, frac,
                                quote(i == 0 ? "1/std" : "")));
  }
  body += "plot " + fmt::format("{}", fmt::join(parts, ", \\\n     ")) + "\n";
  body += fmt::format(
      "set title {}\nset xlabel \"1 / std(input), end of training\"\nset ylabel \"alpha, end of training\"\n"
      "set key top left\n"
      "plot DATA index {} using 1:2 with points pt 7 ps 1.2 lc rgb \"#1f77b4\" title \"one point per DyT layer\", "
      "{} + {} * (x - {}) with lines lw 1.5 lc rgb \"{}\" dt 2 title \"least-squares line\"\n",
      quote(fmt::format("final alpha vs final 1/std across layers (Pearson r = {:.3f})", r)), finals_index, my, slope, mx,
      kGrey);
  fig.plot = body + "unset multiplot";
  return fig;
}

// Fig. 2/4, Fig. 8 and sweep figures, from whatever the runs recorded.
std::vector<FigureFiles> analysis_figures(const Experiment& e, const std::vector<RunSpec>& runs, const fs::path& dir) {
  std::vector<FigureFiles> out;
  std::string note;
  std::set<std::string> mapped, tracked;
  for (const auto& spec : runs) {
    const fs::path mf = spec.dir / "norm_mapping.safetensors";
    if (fs::exists(mf) && mapped.insert(spec.variant).second)
      if (auto fig = mapping_figure(e, spec, mf)) out.push_back(write_figure(dir, *fig, &note));
    if (fs::exists(RunFolder{spec.dir}.metrics()) && !tracked.count(spec.variant))
      if (auto fig = alpha_tracking_figure(e, spec)) {
        tracked.insert(spec.variant);
        out.push_back(write_figure(dir, *fig, &note));
      }
  }
  // Sweeps: the final metric against the first swept key, one line per value of the second.
  if (!e.sweep_points.empty()) {
    std::map<std::string, std::map<double, std::vector<double>>> series;
    std::string xkey, metric;
    MetricFacts facts;
    for (const auto& spec : runs) {
      auto it = e.sweep_points.find(spec.variant);
      if (it == e.sweep_points.end() || !fs::exists(RunFolder{spec.dir}.summary())) continue;
      const auto& vals = it->second.values;
      xkey = vals[0].first;
      metric = spec.config.report.metric;
      std::string label = spec.config.report.column.empty() ? "all" : spec.config.report.column;
      nlohmann::json s = read_json(RunFolder{spec.dir}.summary());
      if (facts.display.empty() && s.contains("metrics")) facts = metric_facts(s, metric);
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
      std::vector<std::string> labels;
      for (const auto& [label, pts] : series) labels.push_back(label);
      natural_sort(labels);
      size_t most = 0;
      for (const auto& [label, pts] : series)
        for (const auto& [x, ys] : pts) most = std::max(most, ys.size());
      Figure fig;
      fig.name = safe_name("sweep_" + metric);
      fig.ylabel = metric_display(json{{"metrics", json::array({{{"name", facts.base}, {"display", facts.display}}})}}, metric);
      fig.title = fmt::format("{}: {} ({})", e.name, fig.ylabel,
                              most > 1 ? "mean over seeds, bars: min to max; diverged runs absent" : "one seed; diverged runs absent");
      fig.xlabel = key_display(xkey);
      std::vector<std::string> parts;
      int i = 0;
      for (const auto& label : labels) {
        fig.data += "# " + label + ": x mean min max n\n";
        for (const auto& [x, ys] : series[label]) {
          double mean = 0, lo = ys[0], hi = ys[0];
          for (double y : ys) mean += y / ys.size(), lo = std::min(lo, y), hi = std::max(hi, y);
          fig.data += fmt::format("{} {} {} {} {}\n", x, mean, lo, hi, ys.size());
        }
        fig.data += "\n\n";
        parts.push_back(fmt::format("DATA index {} using 1:2:3:4 with yerrorlines lw 2 pt 7 {} title {}", i, series_style(i),
                                    quote(label)));
        ++i;
      }
      if (facts.chance) parts.push_back(chance_part(*facts.chance, facts.chance_label));
      fig.extra = "set logscale x 2\nset format x \"%g\"";
      fig.plot = "plot " + fmt::format("{}", fmt::join(parts, ", \\\n     "));
      out.push_back(write_figure(dir, fig, &note));
    }
  }
  return out;
}

// The curves of one stage (or of an unstaged experiment): training loss against updates and
// the primary metric against epochs, one series per table column.
std::vector<FigureFiles> stage_figures(const Experiment& e, const std::vector<RunSpec>& runs, const std::string& stage,
                                       bool reported, const fs::path& dir, std::string* note) {
  Series train, val;
  // label -> (the run's last validated epoch, test value), one per run: the test split is measured
  // once, after the run's own last epoch (runs of one figure may train for different lengths).
  std::map<std::string, std::vector<std::pair<double, double>>> tests;
  std::vector<std::string> order;
  std::string metric;
  MetricFacts facts;
  std::string loss_display = "training loss";
  double last_epoch = 1;
  for (const auto& spec : runs) {
    if (spec.stage != stage) continue;
    const fs::path m = RunFolder{spec.dir}.metrics();
    if (!fs::exists(m)) continue;
    const std::string row = spec.config.report.row.empty() ? "" : spec.config.report.row + ": ";
    const std::string label = row + (spec.config.report.column.empty() ? spec.variant : spec.config.report.column);
    if (std::find(order.begin(), order.end(), label) == order.end()) order.push_back(label);
    json summary;
    if (fs::exists(RunFolder{spec.dir}.summary())) summary = read_json(RunFolder{spec.dir}.summary());
    // The reported stage plots the table's metric; another stage (MAE pretraining) its task's first.
    if (reported) {
      metric = spec.config.report.metric;
    } else if (summary.contains("metrics") && !summary["metrics"].empty()) {
      metric = summary["metrics"][0].value("name", "loss");
    } else {
      metric = "loss";
    }
    if (facts.display.empty() && summary.contains("metrics")) facts = metric_facts(summary, metric);
    if (summary.contains("train_loss_display")) loss_display = summary["train_loss_display"].get<std::string>();
    // The per-epoch value behind best_/test_: the metric, of the EMA weights for an ema_ key.
    std::vector<std::string> prefixes;
    std::string key = base_metric(metric, &prefixes);
    if (std::find(prefixes.begin(), prefixes.end(), "ema_") != prefixes.end()) key = "ema_" + key;
    std::vector<std::pair<double, double>> t, v;
    std::vector<double> test_values;
    for (const auto& j : read_jsonl(m)) {
      const std::string split = j.value("split", "");
      if (split == "train" && j.contains("loss")) t.emplace_back(j["step"].get<double>(), j["loss"].get<double>());
      if (split == "val" && j.contains(key)) {
        v.emplace_back(j["epoch"].get<double>() + 1, j[key].get<double>());
        last_epoch = std::max(last_epoch, v.back().first);
      }
      if (split == "test" && j.contains(key)) test_values.push_back(j[key].get<double>());
    }
    for (double y : test_values) tests[label].emplace_back(v.empty() ? 0.0 : v.back().first, y);
    train[label].push_back(t);
    val[label].push_back(v);
  }
  std::vector<FigureFiles> out;
  if (order.empty()) return out;
  const std::string prefix = stage.empty() || reported ? "" : safe_name(stage) + "_";
  const std::string stage_note = stage.empty() ? "" : fmt::format(" [{} stage]", stage);
  Figure tf = band_figure(prefix + "train_loss", e.name + stage_note + ": training loss", "training step (optimizer updates)",
                          loss_display, train, order);
  out.push_back(write_figure(dir, tf, note));
  std::vector<std::string> prefixes;
  std::string vname = base_metric(metric, &prefixes);
  if (std::find(prefixes.begin(), prefixes.end(), "ema_") != prefixes.end()) vname = "ema_" + vname;
  std::string ylabel = facts.display;
  if (ylabel.rfind("validation", 0) != 0) ylabel = "validation " + ylabel;
  Figure vf = band_figure(prefix + "val_" + vname, e.name + stage_note + ": " + ylabel + " per epoch", "epoch", ylabel, val, order,
                          /*points=*/true);
  vf.extra = epoch_tics(last_epoch);
  std::vector<std::string> extra_parts;
  if (!tests.empty()) {
    // The test split, measured once after training: a point per run at that run's last epoch.
    int index = 0;
    std::string block;
    for (const auto& label : order) {
      auto it = tests.find(label);
      if (it != tests.end()) {
        vf.data += fmt::format("# {} test (once, after training): epoch value\n", label);
        for (const auto& [epoch, y] : it->second) vf.data += fmt::format("{} {}\n", epoch, y);
        vf.data += "\n\n";
        const std::string style = series_style(index);
        extra_parts.push_back(fmt::format("DATA index {} using 1:2 with points pt 6 ps 1.5 {} title {}", order.size() + extra_parts.size(),
                                          style.substr(0, style.find(" dt")),
                                          quote(extra_parts.empty() ? "test split, once after training (one point per seed)" : "")));
      }
      ++index;
    }
    vf.title += "; circles: test";
  }
  if (facts.chance) extra_parts.push_back(chance_part(*facts.chance, facts.chance_label));
  if (!extra_parts.empty()) vf.plot += ", \\\n     " + fmt::format("{}", fmt::join(extra_parts, ", \\\n     "));
  out.push_back(write_figure(dir, vf, note));
  return out;
}

}  // namespace

std::vector<FigureFiles> plot_experiment(const std::string& experiment, const fs::path& out_root, std::string* note) {
  Experiment e = load_experiment(experiment);
  PlanRequest req;
  req.out = out_root;
  std::vector<RunSpec> runs = plan_runs(e, req);
  std::vector<std::string> stages;  // in plan order; "" for an unstaged experiment
  std::string reported;
  for (const auto& spec : runs) {
    if (std::find(stages.begin(), stages.end(), spec.stage) == stages.end()) stages.push_back(spec.stage);
    if (!spec.stage.empty() && reported.empty())
      reported = spec.config.report.stage.empty() ? spec.stages.back() : spec.config.report.stage;
  }
  const fs::path dir = out_root / e.name / "plots";
  std::vector<FigureFiles> out;
  std::string n;
  for (const auto& stage : stages)
    for (auto& f : stage_figures(e, runs, stage, stage == reported, dir, &n)) out.push_back(f);
  if (out.empty()) {
    if (note) *note = fmt::format("no run of {} has metrics yet under {}; run it first", e.name, out_root.string());
    return out;
  }
  for (auto& f : analysis_figures(e, runs, dir)) out.push_back(f);
  if (note) *note = n;
  return out;
}

}  // namespace dyt
