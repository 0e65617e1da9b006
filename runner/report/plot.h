// Plots with gnuplot: each figure is written as <name>.dat (the data), <name>.gp (a gnuplot
// script that reads it) and, when gnuplot is installed, <name>.png and <name>.svg rendered from
// that script, so anyone can restyle a figure by editing the .gp and running gnuplot on it.
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
  std::string plot;   // the `plot ...` command (data file referred to as DATA)
  std::string extra;  // more settings (log scale, palette, ...)
  std::string key;    // legend position ("top right" when empty)
};

struct FigureFiles {
  std::filesystem::path dat, gp, png, svg;
  bool rendered = false;
};

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
