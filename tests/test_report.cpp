// Tables rendered from fixture runs: seeds aggregated, a diverged run and a missing cell shown
// as such, golden Markdown / CSV / LaTeX.
#include <gtest/gtest.h>

#include "runner/report/tables.h"

using namespace dyt;

namespace {
RunRecord rec(const std::string& row, const std::string& col, const std::string& status, double top1, int64_t div_step = -1) {
  RunRecord r;
  r.row = row, r.column = col, r.status = status;
  r.summary = {{"status", status}};
  if (status == "finished") r.summary["top1"] = top1;
  if (status == "diverged") r.summary["diverged_step"] = div_step;
  return r;
}
}  // namespace

TEST(Table, MeanStdDeltaDivergedAndMissing) {
  std::vector<RunRecord> runs = {rec("ViT-S", "LN", "finished", 80.0), rec("ViT-S", "LN", "finished", 82.0),
                                 rec("ViT-S", "DyT", "finished", 81.0), rec("ViT-S", "DyT", "finished", 82.0),
                                 rec("ViT-B", "LN", "finished", 83.0), rec("ViT-B", "DyT", "diverged", 0, 1200),
                                 rec("ViT-B", "DyT", "missing", 0)};
  Table t = build_table("demo", "top1", "LN", runs);
  const std::string md = render_markdown(t);
  // n is said once (the common count, 2) and only the cell with another count carries its own.
  EXPECT_EQ(md,
            "### demo\n\ntop1 (higher is better); mean ± sample std over 2 seeds; (n=k): a cell with another number of "
            "seeds; Δ: difference of the means from LN\n\n"
            "| setting | LN | DyT | Δ (DyT − LN) |\n|---|---:|---:|---:|\n"
            "| ViT-S | 81.00 ± 1.41 | 81.50 ± 0.71 | +0.50 |\n"
            "| ViT-B | 83.00 (n=1) | diverged @ step 1200; 1 missing | — |\n");
  const std::string csv = render_csv(t);
  EXPECT_EQ(csv,
            "row,column,metric,mean,std,n,diverged,diverged_steps,missing,delta_vs_LN\n"
            "ViT-S,LN,top1,81.0000,1.4142,2,0,,0,\n"
            "ViT-S,DyT,top1,81.5000,0.7071,2,0,,0,0.5000\n"
            "ViT-B,LN,top1,83.0000,,1,0,,0,\n"
            "ViT-B,DyT,top1,,,0,1,1200,1,\n");
  const std::string tex = render_latex(t);
  EXPECT_NE(tex.find("\\toprule\nsetting & \\multicolumn{1}{>{\\raggedleft\\arraybackslash}p{0.14\\linewidth}}{LN}"),
            std::string::npos)
      << tex;
  EXPECT_NE(tex.find("ViT-S & 81.00{\\scriptsize${}\\pm{}$1.41} & 81.50{\\scriptsize${}\\pm{}$0.71} & +0.50 \\\\"),
            std::string::npos)
      << tex;
  EXPECT_NE(tex.find("ViT-B & 83.00 (n=1) & diverged @ step 1200; 1 missing & -- \\\\"), std::string::npos) << tex;
  EXPECT_NE(tex.find("\\bottomrule"), std::string::npos);
}

TEST(Table, TrueMinusSignsAndNoDeltasWithoutABaseline) {
  std::vector<RunRecord> runs = {rec("a", "x", "finished", 2.0), rec("a", "y", "finished", -1.0),
                                 rec("a", "z", "finished", 1.0)};
  Table t = build_table("t", "top1", "x", runs);
  const std::string md = render_markdown(t);
  EXPECT_NE(md.find("| a | 2.00 | \u22121.00 | 1.00 | \u22123.00 | \u22121.00 |"), std::string::npos) << md;
  EXPECT_EQ(md.find("| -"), std::string::npos) << md;  // no hyphen-minus in front of a number
  EXPECT_NE(render_latex(t).find("& $-$1.00 &"), std::string::npos) << render_latex(t);
  // report.baseline: none (a sweep): no difference columns, and no word about them.
  Table sweep = build_table("t", "top1", "none", runs);
  EXPECT_EQ(render_markdown(sweep).find("Δ"), std::string::npos) << render_markdown(sweep);
  EXPECT_NE(render_markdown(sweep).find("| setting | x | y | z |\n"), std::string::npos);
  EXPECT_NE(render_csv(sweep).find("delta_vs_none"), std::string::npos);
  EXPECT_NE(render_markdown(sweep).find("one seed per cell"), std::string::npos);
}

TEST(Table, WideTablesSplitIntoBlocksOfFourNumericColumns) {
  std::vector<RunRecord> runs;
  for (const char* c : {"LN", "DyT", "DyT, LN on features", "RMSNorm"}) runs.push_back(rec("r", c, "finished", 1.0));
  Table t = build_table("wide", "top1", "LN", runs);  // 4 values + 3 differences = 7 columns
  const std::string tex = render_latex(t);
  size_t blocks = 0;
  for (size_t p = tex.find("\\begin{tabular}"); p != std::string::npos; p = tex.find("\\begin{tabular}", p + 1)) ++blocks;
  EXPECT_EQ(blocks, 2u) << tex;
  EXPECT_NE(tex.find("DyT, LN on features"), std::string::npos);
}

TEST(Table, MetricDisplaySaysWhatWasMeasured) {
  const nlohmann::json s = {{"metrics", nlohmann::json::array({{{"name", "top1"}, {"display", "top-1 accuracy (%)"},
                                                               {"higher_is_better", true}}})}};
  EXPECT_EQ(metric_display(s, "test_top1"), "test top-1 accuracy (%), measured once after training");
  EXPECT_EQ(metric_display(s, "best_top1"), "best validation top-1 accuracy (%) over the evaluations");
  EXPECT_EQ(metric_display(s, "top1"), "final validation top-1 accuracy (%)");
  EXPECT_EQ(metric_display(s, "test_ema_top1"), "test EMA weights' top-1 accuracy (%), measured once after training");
  EXPECT_EQ(metric_higher_is_better(s, "test_top1"), std::optional<bool>(true));
}

TEST(Table, LossMetricsAreLowerIsBetterAndBaselineDefaultsToFirstColumn) {
  std::vector<RunRecord> runs = {rec("a", "x", "finished", 1.0), rec("a", "y", "finished", 2.0)};
  runs[0].summary["val_loss"] = 1.5;
  runs[1].summary["val_loss"] = 1.25;
  Table t = build_table("t", "val_loss", "", runs);
  EXPECT_FALSE(t.higher_is_better);
  EXPECT_EQ(t.baseline, "x");
  EXPECT_NE(render_markdown(t).find("| a | 1.50 | 1.25 | \u22120.25 |"), std::string::npos) << render_markdown(t);
}

TEST(Table, MetricDirectionComesFromTheTaskNotTheName) {
  // A metric whose name says nothing (a word error rate): the run's summary declares it.
  RunRecord a, b;
  a.row = b.row = "r", a.column = "A", b.column = "B", a.status = b.status = "finished";
  const nlohmann::json metrics = nlohmann::json::array({{{"name", "wer"}, {"display", "WER"}, {"higher_is_better", false}}});
  a.summary = {{"best_wer", 10.0}, {"metrics", metrics}};
  b.summary = {{"best_wer", 12.0}, {"metrics", metrics}};
  EXPECT_EQ(metric_higher_is_better(a.summary, "best_wer"), std::optional<bool>(false));
  EXPECT_EQ(metric_higher_is_better(a.summary, "wer"), std::optional<bool>(false));
  EXPECT_FALSE(metric_higher_is_better(a.summary, "top1").has_value());
  EXPECT_FALSE(build_table("t", "best_wer", "", {a, b}).higher_is_better);
  // Without a declaration (runs from before summaries carried it): the name rule.
  a.summary.erase("metrics"), b.summary.erase("metrics");
  EXPECT_TRUE(build_table("t", "best_wer", "", {a, b}).higher_is_better);
  a.summary["val_loss"] = 1.0;
  EXPECT_FALSE(build_table("t", "val_loss", "", {a}).higher_is_better);
}
