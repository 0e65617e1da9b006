// Sweeps and config removal, the paper-tables builder, plot data and files, and the analysis
// helpers (norm capture hooks, tanh fits, alpha-vs-1/std correlation).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <torch/torch.h>

#include "models/model.h"
#include "models/norm/norm.h"
#include "models/vit.h"
#include "runner/train/norm_probes.h"
#include "runner/experiment/config.h"
#include "runner/experiment/experiment.h"
#include "core/io.h"
#include "runner/report/plot.h"
#include "runner/report/tables.h"
#include "test_util.h"

using namespace dyt;
using dyt::test::TempDir;
using dyt::test::write_file;
using torch::Tensor;

TEST(Sweep, ExpandsTheProductOverVariantsAndFillsLabels) {
  TempDir d;
  write_file(d / "s.yaml",
             "optim.lr: 0.1\nmodel.norm.type: dyt\nvariants:\n  a: {report.column: A}\n  b: {optim.lr: 0.2, report.column: B}\n"
             "sweep:\n  model.norm.alpha_init: [0.5, 1.0]\n  model.depth: [2, 3, 4]\n"
             "report: {row: \"alpha0 {model.norm.alpha_init}, depth {model.depth}\"}\n");
  Experiment e = load_experiment((d / "s.yaml").string());
  ASSERT_EQ(e.variant_names.size(), 12u);
  EXPECT_EQ(e.variant_names[0], "a.alpha_init=0.5.depth=2");
  EXPECT_EQ(e.variant_names[1], "a.alpha_init=0.5.depth=3");
  EXPECT_EQ(e.variant_names[11], "b.alpha_init=1.0.depth=4");
  PlanRequest req;
  req.out = d / "out";
  auto runs = plan_runs(e, req);
  ASSERT_EQ(runs.size(), 12u);
  const auto& r = runs[11];
  EXPECT_DOUBLE_EQ(r.config.model().norm.alpha_init, 1.0);
  EXPECT_DOUBLE_EQ(r.config.optim.lr, 0.2);  // the base variant applies too
  EXPECT_EQ(r.config.report.row, "alpha0 1.0, depth 4");
  EXPECT_EQ(r.config.report.column, "B");
  EXPECT_EQ(r.dir, d / "out" / "s" / "b.alpha_init=1.0.depth=4" / "seed0");
}

TEST(Config, NullRemovesWhatABaseSet) {
  TempDir d;
  write_file(d / "base.yaml", "optim.lr: 0.1\nvariants:\n  ln: {}\n  dyt: {model.norm.type: dyt}\ndata: {root: /somewhere}\n");
  write_file(d / "child.yaml", "base: base.yaml\nvariants: {dyt: ~}\ndata: {root: ~}\n");
  Experiment e = load_experiment((d / "child.yaml").string());
  EXPECT_EQ(e.variant_names, std::vector<std::string>{"ln"});
  PlanRequest req;
  req.out = d.path();
  EXPECT_EQ(plan_runs(e, req)[0].config.data.root, "");  // back to the default
}

TEST(PaperTables, PublishedValuesBesideOursWithSources) {
  TempDir d;
  // Fixture runs of smoke/vit_fmnist: LN finished, DyT diverged.
  auto put = [&](const std::string& variant, const nlohmann::json& s) {
    atomic_write_json(d / "results" / "smoke" / "vit_fmnist" / variant / "seed0" / "summary.json", s);
  };
  put("ln", {{"status", "finished"}, {"test_top1", 71.5}});  // smoke/vit_fmnist reports the test split
  put("dyt", {{"status", "diverged"}, {"diverged_step", 12}});
  write_file(d / "tables.yaml",
             "tables:\n  - id: t1\n    title: T1 demo\n    metric: top1\n    columns: [LN, DyT]\n    rows:\n"
             "      - {setting: ViT-B, paper: {LN: 82.3, DyT: 82.5}}\n"
             "      - {setting: tiny, experiment: smoke/vit_fmnist}\n");
  std::string md = write_paper_tables(d / "results", d / "tables.yaml");
  EXPECT_NE(md.find("| ViT-B | paper | 82.3 | 82.5 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| tiny | ours: smoke/vit_fmnist | 71.50 (n=1) | diverged |"), std::string::npos) << md;
  EXPECT_TRUE(std::filesystem::exists(d / "results" / "paper" / "tables.tex"));
  EXPECT_NE(read_text(d / "results" / "paper" / "tables.csv").find("t1,\"ViT-B\",\"paper\",LN,\"82.3\""), std::string::npos);
}

TEST(Plot, BandsAggregateSeedsAndFiguresAreWritten) {
  auto band = aggregate_band({{{1, 2.0}, {2, 4.0}}, {{1, 4.0}, {2, 6.0}, {3, 1.0}}});
  ASSERT_EQ(band.size(), 3u);
  EXPECT_DOUBLE_EQ(band[0].mean, 3.0);
  EXPECT_DOUBLE_EQ(band[0].min, 2.0);
  EXPECT_DOUBLE_EQ(band[1].max, 6.0);
  EXPECT_EQ(band[2].n, 1);
  TempDir d;
  Figure f;
  f.name = "demo", f.title = "demo", f.xlabel = "x", f.ylabel = "y";
  f.data = "1 1\n2 4\n3 9\n";
  f.plot = "plot DATA using 1:2 with lines title \"y = x^2\"";
  std::string note;
  FigureFiles out = write_figure(d.path(), f, &note);
  EXPECT_TRUE(std::filesystem::exists(out.gp));
  EXPECT_NE(read_text(out.gp).find("\"demo.dat\""), std::string::npos);
  if (std::system("command -v gnuplot > /dev/null 2>&1") == 0) {
    EXPECT_TRUE(out.rendered) << note;
    EXPECT_GT(std::filesystem::file_size(out.png), 1000u);
    EXPECT_NE(read_text(out.svg).find("<svg"), std::string::npos);
    EXPECT_EQ(read_text(out.pdf).rfind("%PDF", 0), 0u);  // the PDF for LaTeX, from the same script
  } else {
    EXPECT_NE(note.find("gnuplot not found"), std::string::npos);
  }
}

TEST(Plot, FifteenSeriesStayDistinctAndNumbersSortByValue) {
  std::set<std::string> styles;
  for (int i = 0; i < 30; ++i) styles.insert(series_style(i));
  EXPECT_EQ(styles.size(), 30u);  // the alpha0 sweep draws 15 series
  std::vector<std::string> labels = {"width 128", "width 32", "width 64", "alpha0 = 0.5", "alpha0 = 0.25"};
  natural_sort(labels);
  EXPECT_EQ(labels, (std::vector<std::string>{"alpha0 = 0.25", "alpha0 = 0.5", "width 32", "width 64", "width 128"}));
  EXPECT_EQ(key_display("model.norm.alpha_init"), "alpha0 (initial alpha of DyT) [model.norm.alpha_init]");
}

TEST(Plot, LongTitlesWrapIntoEvenLinesThatFitTheFigure) {
  // This title ran past the right edge of the 960-px PNG (mini/mae_fmnist, before wrapping).
  const std::string t =
      "mini/mae_fmnist [pretrain stage]: validation loss (MSE on masked patches) per epoch (mean of 2 seeds, band: min to "
      "max)";
  EXPECT_EQ(wrap_title("short title", 960), "short title");
  const std::string w = wrap_title(t, 960);
  ASSERT_EQ(std::count(w.begin(), w.end(), '\n'), 1) << w;
  const size_t nl = w.find('\n');
  EXPECT_LE(nl, 960 / 8.5);
  EXPECT_LE(w.size() - nl - 1, 960 / 8.5);
  EXPECT_LT(std::abs(static_cast<long>(nl) - static_cast<long>(w.size() - nl - 1)), 20) << w;  // even, not greedy
  std::string rejoined = w;
  rejoined[nl] = ' ';
  EXPECT_EQ(rejoined, t);  // broken at a space, nothing lost
  const std::string narrow = wrap_title(t, 400);
  EXPECT_EQ(std::count(narrow.begin(), narrow.end(), '\n'), 2) << narrow;  // 119 characters at 47 a line
  // The script carries gnuplot's "\n" inside the quoted title, never a raw line break.
  TempDir d;
  Figure f;
  f.name = "long", f.title = t, f.xlabel = "x", f.ylabel = "y";
  f.data = "1 1\n2 4\n";
  f.plot = "plot DATA using 1:2 with lines notitle";
  FigureFiles out = write_figure(d.path(), f);
  const std::string gp = read_text(out.gp);
  EXPECT_NE(gp.find("set title \"" + w.substr(0, nl) + "\\n" + w.substr(nl + 1) + "\""), std::string::npos) << gp;
  EXPECT_NE(gp.find("# " + t + "\n"), std::string::npos);  // the header comment keeps the title on one line
}

TEST(Plot, TestPointsSitAtEachRunsOwnLastEpoch) {
  // The gap study's committed records mix 8-epoch runs and a 16-epoch pair: each test point must
  // sit at its own run's last epoch (they were all drawn at 16 before).
  TempDir d;
  std::filesystem::copy(std::filesystem::path(DYT_SOURCE_DIR) / "results/reference/runs", d.path(),
                        std::filesystem::copy_options::recursive);
  plot_experiment("analysis/small_scale_gap", d.path());
  const std::string dat = read_text(d.path() / "analysis/small_scale_gap/plots/val_top1.dat");
  const auto block = [&](const std::string& label) {
    const size_t at = dat.find("# " + label + " test");
    EXPECT_NE(at, std::string::npos) << label;
    return at == std::string::npos ? std::string() : dat.substr(at, dat.find("\n\n", at) - at);
  };
  EXPECT_NE(block("avg, 16 epochs: DyT").find("\n16 77.21"), std::string::npos) << block("avg, 16 epochs: DyT");
  const std::string eight = block("avg pool + fc_norm (the official runs): DyT");
  EXPECT_NE(eight.find("\n8 42.92"), std::string::npos) << eight;
  EXPECT_EQ(eight.find("\n16 "), std::string::npos) << eight;
}

TEST(Analysis, CaptureHookSeesInputAndNormalisedOutput) {
  NormOptions o;
  auto ln = make_norm_factory(o)(8);
  {
    torch::NoGradGuard ng;
    for (auto& p : ln->parameters()) p.fill_(3.0);  // the affine part must not show up
  }
  Tensor seen_in, seen_out;
  ln->capture = [&](const Tensor& in, const Tensor& out) { seen_in = in, seen_out = out; };
  Tensor x = torch::randn({2, 5, 8});
  ln->forward(x);
  EXPECT_TRUE(torch::equal(seen_in, x));
  Tensor expect = (x - x.mean(-1, true)) / torch::sqrt(x.var(-1, false, true) + 1e-6);
  EXPECT_LT((seen_out - expect).abs().max().item<double>(), 1e-5);
}

TEST(Analysis, CaptureNormMappingSavesPointsForEveryLayer) {
  TempDir d;
  ViTOptions o;
  o.img_size = 8, o.patch_size = 4, o.in_chans = 1, o.num_classes = 3, o.embed_dim = 16, o.depth = 2, o.num_heads = 2;
  auto m = std::make_shared<ViTImpl>(o);
  m->eval();
  auto report = capture_norm_mapping(*m, [&](int64_t i) {
    if (i >= 4) return false;
    m->forward(torch::randn({6, 1, 8, 8}));
    return true;
  }, 200, d / "map.safetensors");
  ASSERT_EQ(report.size(), 5u);  // 2 per block + final
  SafeTensorsFile f = read_safetensors(d / "map.safetensors");
  for (const auto& layer : report) {
    const std::string name = layer["layer"];
    EXPECT_EQ(f.find(name + ".x")->numel(), 200) << name;
    EXPECT_EQ(f.find(name + ".y")->numel(), 200) << name;
    EXPECT_LT(f.find(name + ".channel")->max().item<int64_t>(), 16);
    EXPECT_GE(layer["near_linear_fraction"].get<double>(), 0.0);
  }
  EXPECT_FALSE(static_cast<bool>(norm_layers(*m)[0].second->capture));  // hooks removed
}

TEST(Analysis, TanhFitRecoversTheCurveAndCorrelation) {
  Tensor x = torch::linspace(-6, 6, 2001, torch::kDouble);
  TanhFit f = fit_tanh(x, 2.0 * torch::tanh(0.7 * x));
  EXPECT_NEAR(f.b, 0.7, 0.03);
  EXPECT_NEAR(f.a, 2.0, 0.05);
  EXPECT_NEAR(f.near_linear, (x.abs() <= 0.5 / f.b).to(torch::kDouble).mean().item<double>(), 1e-9);
  EXPECT_NEAR(fit_tanh(x, 3 * x).linear_r2, 1.0, 1e-9);
  nlohmann::json line = {{"layers", {{{"alpha", 1.0}, {"input_std", 1.0}}, {{"alpha", 0.5}, {"input_std", 2.0}},
                                     {{"alpha", 0.25}, {"input_std", 4.0}}, {{"name", "ln"}, {"input_std", 3.0}}}}};
  EXPECT_NEAR(alpha_invstd_correlation(line), 1.0, 1e-9);  // alpha = 1/std exactly
}
