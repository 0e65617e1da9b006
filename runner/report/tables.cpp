// Paper-style tables from run summaries: mean ± std over seeds, deltas, divergence; the paper's tables.
#include "runner/report/tables.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <sstream>
#include <yaml-cpp/yaml.h>

#include "runner/experiment/experiment.h"
#include "core/io.h"
#include "runner/run/run_folder.h"

#include <functional>
#include <set>

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); }
double sample_std(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / (v.size() - 1));
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

// A signed or unsigned number with a true minus sign (U+2212; $-$ in LaTeX).
std::string number(double v, bool latex, bool sign = false) {
  std::string s = fmt::format(sign ? "{:+.2f}" : "{:.2f}", v);
  if (s[0] == '-') s = (latex ? "$-$" : "\u2212") + s.substr(1);
  return s;
}

// The number of seeds most cells have: stated once (in the caption line); a cell with another
// count says its own.
int64_t common_n(const Table& t) {
  std::map<size_t, int64_t> counts;
  for (const auto& [key, c] : t.cells)
    if (!c.values.empty()) ++counts[c.values.size()];
  size_t best = 0;
  int64_t most = 0;
  for (const auto& [n, k] : counts)
    if (k > most) best = n, most = k;
  return static_cast<int64_t>(best);
}

// The text of one cell, in the given decimal style.
std::string cell_text(const Cell& c, bool latex, int64_t n_common) {
  std::vector<std::string> parts;
  if (!c.values.empty()) {
    std::string s = number(mean(c.values), latex);
    if (c.values.size() > 1)
      s += latex ? "{\\scriptsize${}\\pm{}$" + number(sample_std(c.values), true) + "}" : " ± " + number(sample_std(c.values), false);
    if (static_cast<int64_t>(c.values.size()) != n_common) s += fmt::format(" (n={})", c.values.size());
    parts.push_back(s);
  }
  if (!c.diverged_steps.empty()) {
    std::vector<std::string> steps;
    for (auto st : c.diverged_steps) steps.push_back(std::to_string(st));
    parts.push_back(fmt::format("diverged @ step {}", fmt::join(steps, ", ")));
  }
  if (c.missing > 0) parts.push_back(fmt::format("{} missing", c.missing));
  if (c.no_metric > 0) parts.push_back(fmt::format("{} finished without this metric", c.no_metric));
  if (parts.empty()) return latex ? "--" : "—";
  return fmt::format("{}", fmt::join(parts, "; "));
}

std::string delta_text(const Cell* a, const Cell* base, bool latex = false) {
  if (!a || !base || a->values.empty() || base->values.empty()) return latex ? "--" : "—";
  return number(mean(a->values) - mean(base->values), latex, true);
}

// "mean ± sample std over 3 seeds" and the like: what the cells hold, said once.
std::string caption_line(const Table& t) {
  const int64_t n = common_n(t);
  std::string what = t.metric_display.empty() ? t.metric : t.metric_display;
  std::string s = fmt::format("{} ({} is better); ", what, t.higher_is_better ? "higher" : "lower");
  if (n > 1)
    s += fmt::format("mean ± sample std over {} seeds", n);
  else if (n == 1)
    s += "one seed per cell";
  else
    s += "no finished runs yet";
  bool other = false;
  for (const auto& [key, c] : t.cells)
    if (!c.values.empty() && static_cast<int64_t>(c.values.size()) != n) other = true;
  if (other) s += "; (n=k): a cell with another number of seeds";
  if (t.columns.size() > 1 && !t.baseline.empty()) s += fmt::format("; Δ: difference of the means from {}", t.baseline);
  return s;
}

std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string latex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '_' || c == '%' || c == '&' || c == '#') out += '\\';
    out += c;
  }
  return out;
}

const Cell* find_cell(const Table& t, const std::string& r, const std::string& c) {
  auto it = t.cells.find({r, c});
  return it == t.cells.end() ? nullptr : &it->second;
}

}  // namespace

std::string format_mean_std(const std::vector<double>& v, int decimals) {
  if (v.empty()) return "—";
  if (v.size() == 1) return fmt::format("{:.{}f}", v[0], decimals);
  return fmt::format("{:.{}f} ± {:.{}f}", mean(v), decimals, sample_std(v), decimals);
}

std::string base_metric(std::string m, std::vector<std::string>* prefixes) {
  for (bool again = true; again;) {
    again = false;
    for (const char* p : {"best_", "test_", "ema_"})
      if (m.rfind(p, 0) == 0) {
        if (prefixes) prefixes->push_back(p);
        m = m.substr(std::string(p).size()), again = true;
      }
  }
  if (m == "val_loss") m = "loss";
  return m;
}

std::optional<bool> metric_higher_is_better(const nlohmann::json& summary, const std::string& metric) {
  if (!summary.contains("metrics") || !summary["metrics"].is_array()) return std::nullopt;
  const std::string m = base_metric(metric);
  for (const auto& info : summary["metrics"])
    if (info.value("name", "") == m && info.contains("higher_is_better")) return info["higher_is_better"].get<bool>();
  return std::nullopt;
}

std::string metric_display(const nlohmann::json& summary, const std::string& metric) {
  std::vector<std::string> prefixes;
  const std::string m = base_metric(metric, &prefixes);
  std::string name = m;
  if (summary.contains("metrics") && summary["metrics"].is_array())
    for (const auto& info : summary["metrics"])
      if (info.value("name", "") == m && info.contains("display")) name = info["display"].get<std::string>();
  if (m == "loss" && metric != "loss" && metric.find("test_") == std::string::npos) name = "validation loss";
  bool test = false, best = false, ema = false;
  for (const auto& p : prefixes) test |= p == "test_", best |= p == "best_", ema |= p == "ema_";
  std::string s = name;
  if (ema) s = "EMA weights' " + s;
  if (test) return "test " + s + ", measured once after training";
  if (best) return "best validation " + s + " over the evaluations";
  return name.rfind("validation", 0) == 0 ? "final " + s : "final validation " + s;
}

Table build_table(const std::string& title, const std::string& metric, const std::string& baseline,
                  const std::vector<RunRecord>& runs) {
  Table t;
  t.title = title, t.metric = metric;
  // The direction the task declared in summary.json; runs made before it was written there fall
  // back to the old rule (a loss is lower-is-better).
  std::optional<bool> declared;
  for (const auto& r : runs)
    if (!declared) declared = metric_higher_is_better(r.summary, metric);
  t.higher_is_better = declared ? *declared : metric.find("loss") == std::string::npos;
  for (const auto& r : runs) {
    add_unique(t.rows, r.row);
    add_unique(t.columns, r.column);
    Cell& c = t.cells[{r.row, r.column}];
    if (r.status == "finished" && r.summary.contains(metric) && r.summary[metric].is_number())
      c.values.push_back(r.summary[metric].get<double>());
    else if (r.status == "finished")
      ++c.no_metric;
    else if (r.status == "diverged")
      c.diverged_steps.push_back(r.summary.value("diverged_step", int64_t{-1}));
    else
      ++c.missing;
  }
  for (const auto& r : runs)
    if (t.metric_display.empty() && r.summary.contains("metrics")) t.metric_display = metric_display(r.summary, metric);
  if (baseline == "none")
    t.baseline.clear();
  else
    t.baseline = !baseline.empty() && std::find(t.columns.begin(), t.columns.end(), baseline) != t.columns.end()
                     ? baseline
                     : (t.columns.empty() ? "" : t.columns.front());
  return t;
}

namespace {
std::vector<std::string> delta_columns(const Table& t) {
  std::vector<std::string> out;
  if (t.baseline.empty()) return out;
  for (const auto& c : t.columns)
    if (c != t.baseline) out.push_back(c);
  return out;
}
std::string delta_header(const Table& t, const std::string& c) {
  return t.columns.size() == 2 ? fmt::format("Δ ({} − {})", c, t.baseline) : fmt::format("Δ {}", c);
}
}  // namespace

std::string render_markdown(const Table& t) {
  const int64_t n = common_n(t);
  std::string out = fmt::format("### {}\n\n{}\n\n", t.title, caption_line(t));
  std::vector<std::string> head{"setting"};
  head.insert(head.end(), t.columns.begin(), t.columns.end());
  for (const auto& c : delta_columns(t)) head.push_back(delta_header(t, c));
  out += "| " + fmt::format("{}", fmt::join(head, " | ")) + " |\n|";
  for (size_t i = 0; i < head.size(); ++i) out += i == 0 ? "---|" : "---:|";
  out += "\n";
  for (const auto& r : t.rows) {
    std::vector<std::string> line{r};
    for (const auto& c : t.columns) {
      const Cell* cell = find_cell(t, r, c);
      line.push_back(cell ? cell_text(*cell, false, n) : "—");
    }
    for (const auto& c : delta_columns(t)) line.push_back(delta_text(find_cell(t, r, c), find_cell(t, r, t.baseline)));
    out += "| " + fmt::format("{}", fmt::join(line, " | ")) + " |\n";
  }
  return out;
}

std::string render_csv(const Table& t) {
  std::string out = "row,column,metric,mean,std,n,diverged,diverged_steps,missing,delta_vs_" +
                    csv_quote(t.baseline.empty() ? "none" : t.baseline) + "\n";
  for (const auto& r : t.rows)
    for (const auto& c : t.columns) {
      const Cell* cell = find_cell(t, r, c);
      if (!cell) continue;
      std::string m = cell->values.empty() ? "" : fmt::format("{:.4f}", mean(cell->values));
      std::string s = cell->values.size() > 1 ? fmt::format("{:.4f}", sample_std(cell->values)) : "";
      std::string d;
      const Cell* base = find_cell(t, r, t.baseline);
      if (c != t.baseline && base && !base->values.empty() && !cell->values.empty())
        d = fmt::format("{:.4f}", mean(cell->values) - mean(base->values));
      out += fmt::format("{},{},{},{},{},{},{},{},{},{}\n", csv_quote(r), csv_quote(c), t.metric, m, s, cell->values.size(),
                         cell->diverged_steps.size(), fmt::join(cell->diverged_steps, " "), cell->missing, d);
    }
  return out;
}

std::string render_latex(const Table& t) {
  // booktabs + array. The setting column and the headers wrap; more than kMaxColumns numeric
  // columns (values and differences) are split into blocks, each repeating the setting column, so
  // that a table fits a single-column page (tests/e2e/latex_tables.sh compiles every reference
  // table and fails on an overfull box).
  constexpr size_t kMaxColumns = 4;
  const int64_t n = common_n(t);
  struct Col {
    std::string head;
    std::function<std::string(const std::string&)> cell;
  };
  std::vector<Col> cols;
  for (const auto& c : t.columns)
    cols.push_back({latex_escape(c), [&t, c, n](const std::string& r) {
                      const Cell* cell = find_cell(t, r, c);
                      return cell ? cell_text(*cell, true, n) : std::string("--");
                    }});
  for (const auto& c : delta_columns(t))
    cols.push_back({"$\\Delta$ " + latex_escape(c), [&t, c](const std::string& r) {
                      return delta_text(find_cell(t, r, c), find_cell(t, r, t.baseline), true);
                    }});
  std::string caption = caption_line(t);
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{{"±", "$\\pm$"}, {"Δ", "$\\Delta$"}, {"−", "$-$"}}) {
    for (size_t p = caption.find(from); p != std::string::npos; p = caption.find(from, p + to.size())) caption.replace(p, from.size(), to);
  }
  std::string out = "% " + latex_escape(t.title) + "\n% " + latex_escape(caption) + "\n% needs \\usepackage{booktabs,array}\n";
  for (size_t b = 0; b < std::max<size_t>(1, (cols.size() + kMaxColumns - 1) / kMaxColumns); ++b) {
    const size_t lo = b * kMaxColumns, hi = std::min(cols.size(), lo + kMaxColumns);
    if (b) out += "\n\\medskip\n\n";
    out += "\\begin{tabular}{@{}>{\\raggedright\\arraybackslash}p{0.24\\linewidth}";
    for (size_t i = lo; i < hi; ++i) out += "r";
    out += "@{}}\n\\toprule\nsetting";
    for (size_t i = lo; i < hi; ++i)
      out += " & \\multicolumn{1}{>{\\raggedleft\\arraybackslash}p{0.14\\linewidth}}{" + cols[i].head + "}";
    out += " \\\\\n\\midrule\n";
    for (const auto& r : t.rows) {
      out += latex_escape(r);
      for (size_t i = lo; i < hi; ++i) out += " & " + cols[i].cell(r);
      out += " \\\\\n";
    }
    out += "\\bottomrule\n\\end{tabular}\n";
  }
  return out;
}

std::vector<Table> experiment_tables(const Experiment& e, const std::vector<RunSpec>& runs) {
  std::vector<RunRecord> records;
  std::string metric, baseline;
  std::vector<std::string> also;
  for (const auto& spec : runs) {
    if (!spec.stage.empty()) {  // a staged run appears through one stage
      const std::string want = spec.config.report.stage.empty() ? spec.stages.back() : spec.config.report.stage;
      if (spec.stage != want) continue;
    }
    RunRecord r;
    r.variant = spec.variant, r.seed = spec.seed;
    r.row = spec.config.report.row.empty() ? e.name : spec.config.report.row;
    r.column = spec.config.report.column.empty() ? spec.variant : spec.config.report.column;
    if (metric.empty())
      metric = spec.config.report.metric, baseline = spec.config.report.baseline, also = spec.config.report.also;
    const fs::path summary = RunFolder{spec.dir}.summary();
    if (fs::exists(summary)) {
      r.summary = read_json(summary);
      r.status = r.summary.value("status", "missing");
    } else {
      r.status = "missing";
    }
    records.push_back(std::move(r));
  }
  YAML::Node d = e.tree.at("description");
  const std::string title = e.name + (d.IsDefined() && d.IsScalar() ? ": " + d.Scalar() : "");
  std::vector<Table> out = {build_table(title, metric, baseline, records)};
  for (const auto& m : also) out.push_back(build_table(title, m, baseline, records));
  return out;
}

Table experiment_table(const Experiment& e, const std::vector<RunSpec>& runs) { return experiment_tables(e, runs).front(); }

namespace {
// Seeds with a run folder under <out>/<experiment>/<variant>/seed<k>, e.g. from `dyt run --seeds`.
std::vector<int64_t> seeds_on_disk(const fs::path& dir) {
  std::set<int64_t> seeds;
  if (!fs::is_directory(dir)) return {};
  for (const auto& v : fs::directory_iterator(dir)) {
    if (!v.is_directory()) continue;
    for (const auto& s : fs::directory_iterator(v.path())) {
      const std::string n = s.path().filename().string();
      if (s.is_directory() && n.size() > 4 && n.rfind("seed", 0) == 0 &&
          n.find_first_not_of("0123456789", 4) == std::string::npos)
        seeds.insert(std::stoll(n.substr(4)));
    }
  }
  return {seeds.begin(), seeds.end()};
}
}  // namespace

std::vector<Table> experiment_tables(const std::string& experiment, const fs::path& out_root) {
  Experiment e = load_experiment(experiment);
  PlanRequest req;
  req.out = out_root;
  // The YAML's seeds and any others run into this folder (dyt run --seeds ...).
  std::vector<int64_t> disk = seeds_on_disk(out_root / e.name);
  if (!disk.empty()) {
    std::set<int64_t> all(disk.begin(), disk.end());
    for (const auto& r : plan_runs(e, req)) all.insert(r.seed);
    req.seeds.assign(all.begin(), all.end());
  }
  return experiment_tables(e, plan_runs(e, req));
}
Table experiment_table(const std::string& experiment, const fs::path& out_root) {
  return experiment_tables(experiment, out_root).front();
}

namespace {
// One table per metric (report.metric, then report.also), stacked in each file; the CSV keeps
// one header (its rows name their metric).
std::string write_table_files(const std::vector<Table>& tables, const fs::path& dir) {
  std::string md, csv, tex;
  for (size_t i = 0; i < tables.size(); ++i) {
    md += (i ? "\n" : "") + render_markdown(tables[i]);
    std::string c = render_csv(tables[i]);
    csv += i ? c.substr(c.find('\n') + 1) : c;
    tex += (i ? "\n" : "") + render_latex(tables[i]);
  }
  atomic_write(dir / "table.md", md);
  atomic_write(dir / "table.csv", csv);
  atomic_write(dir / "table.tex", tex);
  return md;
}

}  // namespace

std::string write_experiment_table(const std::string& experiment, const fs::path& out_root) {
  return write_table_files(experiment_tables(experiment, out_root), out_root / load_experiment(experiment).name);
}

std::string write_experiment_table(const Experiment& e, const std::vector<RunSpec>& runs, const fs::path& out_root) {
  return write_table_files(experiment_tables(e, runs), out_root / e.name);
}

namespace {

std::string yaml_text(const YAML::Node& n) { return n.IsDefined() && n.IsScalar() ? n.Scalar() : ""; }

}  // namespace

std::string write_paper_tables(const fs::path& out_root, const fs::path& data_file) {
  YAML::Node data;
  try {
    data = YAML::LoadFile(data_file.string());
  } catch (const YAML::Exception& e) {
    throw IoError(fmt::format("{}: cannot read the paper's tables ({})", data_file.string(), e.what()));
  }
  std::string md = "# The paper's tables and this suite's counterparts\n\n"
                   "Rows marked `paper` are the published values (configs/paper/tables.yaml); rows marked `ours` "
                   "come from the named experiment's runs under " + out_root.string() +
                   " (mean ± sample std over seeds, n = seeds; \"missing\" = not run here).\n\n";
  std::string csv = "table,setting,source,column,value\n";
  std::string tex;
  std::map<std::string, Table> cache;
  for (const auto& t : data["tables"]) {
    std::vector<std::string> cols;
    for (const auto& c : t["columns"]) cols.push_back(c.Scalar());
    md += fmt::format("## {}\n\n| setting | source | {} |\n|---|---|{}\n", yaml_text(t["title"]), fmt::join(cols, " | "),
                      [&] {
                        std::string s;
                        for (size_t i = 0; i < cols.size(); ++i) s += "---:|";
                        return s;
                      }());
    tex += fmt::format("% {}\n\\begin{{tabular}}{{ll{}}}\n\\toprule\nsetting & source", yaml_text(t["title"]),
                       std::string(cols.size(), 'r'));
    for (const auto& c : cols) tex += " & " + c;
    tex += " \\\\\n\\midrule\n";
    for (const auto& row : t["rows"]) {
      const std::string setting = yaml_text(row["setting"]);
      auto emit = [&](const std::string& source, const std::vector<std::string>& cells) {
        md += fmt::format("| {} | {} | {} |\n", setting, source, fmt::join(cells, " | "));
        tex += setting + " & " + source;
        for (size_t i = 0; i < cols.size(); ++i) {
          tex += " & " + (cells[i] == "—" ? std::string("--") : cells[i]);
          csv += fmt::format("{},\"{}\",\"{}\",{},\"{}\"\n", yaml_text(t["id"]), setting, source, cols[i], cells[i]);
        }
        tex += " \\\\\n";
      };
      if (row["paper"].IsDefined()) {
        std::vector<std::string> cells;
        for (const auto& c : cols) cells.push_back(row["paper"][c].IsDefined() ? row["paper"][c].Scalar() : "—");
        emit("paper", cells);
      }
      const std::string exp = yaml_text(row["experiment"]);
      if (exp.empty()) continue;
      std::vector<std::string> cells(cols.size(), "missing");
      try {
        if (!cache.count(exp)) cache[exp] = experiment_table(exp, out_root);
        const Table& ours = cache[exp];
        const bool transpose = row["transpose"].IsDefined() && row["transpose"].as<bool>();
        const std::string our_row = yaml_text(row["row"]);
        for (size_t i = 0; i < cols.size(); ++i) {
          // transpose: the paper's columns are our table's rows (e.g. squash functions).
          std::string r = transpose ? cols[i] : (our_row.empty() ? (ours.rows.empty() ? "" : ours.rows.front()) : our_row);
          std::string c = transpose ? yaml_text(row["column_of_ours"]) : cols[i];
          auto it = ours.cells.find({r, c});
          if (it != ours.cells.end()) {
            const Cell& cell = it->second;
            std::string text;
            if (!cell.values.empty()) text = format_mean_std(cell.values) + fmt::format(" (n={})", cell.values.size());
            if (!cell.diverged_steps.empty()) text += (text.empty() ? "" : "; ") + std::string("diverged");
            if (text.empty()) text = "missing";
            cells[i] = text;
          }
        }
      } catch (const std::exception& err) {
        cells.assign(cols.size(), "n/a");
      }
      emit("ours: " + exp, cells);
    }
    md += "\n";
    tex += "\\bottomrule\n\\end{tabular}\n\n";
  }
  // Efficiency: the paper's LLaMA-7B numbers, then every `dyt bench model` CSV found.
  if (YAML::Node eff = data["efficiency"]; eff.IsDefined()) {
    md += "## " + yaml_text(eff["title"]) + "\n\n| norm | inference layer | inference model | training layer | training model |\n"
          "|---|---:|---:|---:|---:|\n";
    for (const auto& r : eff["paper"]) {
      std::vector<std::string> v;
      for (const auto& x : r["values"]) v.push_back(x.Scalar());
      md += fmt::format("| {} (paper) | {} |\n", yaml_text(r["norm"]), fmt::join(v, " | "));
    }
    md += "\n";
    std::vector<fs::path> csvs;
    for (const fs::path& dir : {out_root / "bench", out_root / "reference" / "bench"})
      if (fs::is_directory(dir))
        for (const auto& f : fs::directory_iterator(dir))
          if (f.path().filename().string().rfind("model_", 0) == 0 && f.path().extension() == ".csv") csvs.push_back(f.path());
    std::sort(csvs.begin(), csvs.end());
    for (const auto& f : csvs) {
      md += fmt::format("Ours, `dyt bench model` ({}; milliseconds per pass):\n\n| model | norm | norm layers fwd | "
                        "model fwd | norm layers fwd+bwd | model fwd+bwd |\n|---|---|---:|---:|---:|---:|\n",
                        fs::relative(f, out_root).string());
      std::istringstream in(read_text(f));
      std::string line;
      std::getline(in, line);  // header
      while (std::getline(in, line)) {
        std::vector<std::string> c;
        std::string cell;
        std::istringstream ls(line);
        while (std::getline(ls, cell, ',')) c.push_back(cell);
        if (c.size() < 9) continue;
        auto ms = [](const std::string& t) {  // the CSV keeps full precision; the table two decimals
          char* end = nullptr;
          const double v = std::strtod(t.c_str(), &end);
          return end != t.c_str() ? fmt::format("{:.2f}", v) : t;
        };
        md += fmt::format("| {} | {} | {} | {} | {} | {} |\n", c[0], c[1], ms(c[5]), ms(c[7]), ms(c[6]), ms(c[8]));
      }
      md += "\n";
    }
    if (csvs.empty()) md += "Ours: no `dyt bench model` results under " + out_root.string() + " yet.\n\n";
  }
  const fs::path dir = out_root / "paper";
  atomic_write(dir / "tables.md", md);
  atomic_write(dir / "tables.csv", csv);
  atomic_write(dir / "tables.tex", tex);
  return md;
}

}  // namespace dyt
