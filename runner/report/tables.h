// Comparison tables from finished runs: rows are models/settings, columns are norms (LN, DyT,
// ...), cells are mean +- std over seeds with n; a diverged run shows "diverged @ step N" (the
// paper's "failed"), a run not done yet shows as missing. Rendered as Markdown, CSV and LaTeX.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runner/experiment/experiment.h"

namespace dyt {

struct RunRecord {
  std::string row, column, variant;
  int64_t seed = 0;
  std::string status;  // finished | diverged | interrupted | running | missing
  nlohmann::json summary;
};

struct Cell {
  std::vector<double> values;          // finished runs' metric
  std::vector<int64_t> diverged_steps;
  int64_t missing = 0;                 // planned but not finished (absent, running, interrupted)
  int64_t no_metric = 0;               // finished, but summary.json lacks the table's metric
};

struct Table {
  std::string title, metric;
  std::string metric_display;  // e.g. "test top-1 accuracy (%), measured once after training"
  bool higher_is_better = true;
  std::vector<std::string> rows, columns;  // in first-seen order
  std::string baseline;                    // column deltas refer to; "" = no deltas (report.baseline: none)
  std::map<std::pair<std::string, std::string>, Cell> cells;
};

// The direction of `metric` (a summary key such as top1, best_top1, val_loss) as the task
// declared it in a run's summary.json; none for runs made before summaries carried it.
std::optional<bool> metric_higher_is_better(const nlohmann::json& summary, const std::string& metric);

// The task metric a summary key names: best_<m>, test_<m>, ema_<m> (and combinations) -> m,
// val_loss -> loss; `prefixes` receives the prefixes removed.
std::string base_metric(std::string key, std::vector<std::string>* prefixes = nullptr);

// What a summary key measures, in words for captions and axes ("test top-1 accuracy (%), measured
// once after training", "best validation loss over the evaluations").
std::string metric_display(const nlohmann::json& summary, const std::string& metric);

Table build_table(const std::string& title, const std::string& metric, const std::string& baseline,
                  const std::vector<RunRecord>& runs);
std::string render_markdown(const Table& t);
std::string render_csv(const Table& t);
std::string render_latex(const Table& t);

// Reads the runs an experiment plans (by its YAML) from `out_root`, writes
// <out_root>/<experiment>/table.{md,csv,tex} and returns the Markdown.
std::string write_experiment_table(const std::string& experiment, const std::filesystem::path& out_root);
// The same for the runs a `dyt run` just planned (its --seeds, --set and file path included).
std::string write_experiment_table(const Experiment& e, const std::vector<RunSpec>& runs,
                                   const std::filesystem::path& out_root);

// The cells of an experiment's table as computed by write_experiment_table (without writing).
// `dyt table` re-plans the experiment by name or path, with the YAML's seeds and any others found
// on disk under <out_root>/<experiment>/<variant>/seed<k>.
Table experiment_table(const std::string& experiment, const std::filesystem::path& out_root);
Table experiment_table(const Experiment& e, const std::vector<RunSpec>& runs);
// The primary table (report.metric) and one per report.also metric.
std::vector<Table> experiment_tables(const Experiment& e, const std::vector<RunSpec>& runs);
std::vector<Table> experiment_tables(const std::string& experiment, const std::filesystem::path& out_root);

// Our counterparts of the paper's tables (configs/paper/tables.yaml) next to the published
// values, from whatever runs exist under out_root, plus the efficiency table from the
// benchmark CSVs found. Writes <out_root>/paper/tables.{md,csv,tex}; returns the Markdown.
std::string write_paper_tables(const std::filesystem::path& out_root, const std::filesystem::path& data_file);

// "82.31 ± 0.12" style numbers.
std::string format_mean_std(const std::vector<double>& v, int decimals = 2);

}  // namespace dyt
