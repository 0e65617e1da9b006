// Plots with gnuplot: each figure is written as <name>.dat (the data), <name>.gp (a gnuplot
// script that reads it) and, when gnuplot is installed, <name>.png, <name>.svg and <name>.pdf
// rendered from that one script, so anyone can restyle a figure by editing the .gp and running
// gnuplot on it. Style: labelled axes with units, the legend outside the plotting area, a
// palette of 10 colours x 3 dash types (30 distinct series), integer epoch ticks, chance levels
// as grey dashed lines.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dyt {

struct Figure {
  std::string name;   // file stem
  std::string title, xlabel, ylabel;
  std::string data;   // gnuplot data blocks
  std::string plot;   // the `plot ...` command (data file referred to as DATA); with `panels`, the
                      // whole multiplot body (set multiplot ... unset multiplot)
  std::string extra;  // more settings (log scale, palette, ...)
  std::string key;    // legend position; empty = below the plotting area, centred
  bool panels = false;
  int width = 960, height = 600;  // pixels of the PNG (the PDF: the same shape, 100 px per inch at 0.7 scale)
};

struct FigureFiles {
  std::filesystem::path dat, gp, png, svg, pdf;
  bool rendered = false;
};

// Line style of series i: one of 10 colours (Tableau 10), then the same colours dashed, then
// dotted, so 30 series stay apart. "lc rgb \"#1f77b4\" dt 1"
std::string series_style(int i);
// Sorts labels with embedded numbers by their value: "width 32" < "width 128".
void natural_sort(std::vector<std::string>& labels);
// The axis label for a config key in a sweep (model.norm.alpha_init -> "alpha0 (initial alpha of DyT)").
std::string key_display(const std::string& key);
// Breaks a title at spaces into even lines (joined by "\n") that fit a figure `width_px` wide
// in the PNG's font; a title that fits is returned as it is.
std::string wrap_title(const std::string& title, int width_px);

// Writes the figure's files into `dir` and renders it if gnuplot is found; `note` receives a
// message when it is not (the scripts are still written).
FigureFiles write_figure(const std::filesystem::path& dir, const Figure& f, std::string* note = nullptr);

// Mean and min-max band over seeds at each x of a set of curves (x must match across curves
// where present; missing points are skipped). Returns rows x, mean, min, max, n.
struct BandPoint {
  double x, mean, min, max;
  int n;
};
std::vector<BandPoint> aggregate_band(const std::vector<std::vector<std::pair<double, double>>>& curves);

// Curves of an experiment's runs: training loss against step and the report metric against
// epoch, one line per table column (mean over seeds, min-max band). Returns the files written.
std::vector<FigureFiles> plot_experiment(const std::string& experiment, const std::filesystem::path& out_root,
                                         std::string* note = nullptr);

}  // namespace dyt
