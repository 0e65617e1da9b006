// Config loading: base inheritance, dotted keys, --set overrides, and validation messages that
// name the file, line, key and fix; all problems reported at once.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "models/model.h"
#include "runner/experiment/config.h"
#include "runner/experiment/experiment.h"
#include "test_util.h"

using namespace dyt;
namespace fs = std::filesystem;
using dyt::test::TempDir;
using dyt::test::write_file;

namespace {

ExperimentConfig decode(const ConfigTree& t) {
  ExperimentConfig cfg;
  decode_config(t, [&](FieldVisitor& v) { cfg.visit(v); }, {"variants"});
  return cfg;
}


const char* kMinimal = "optim:\n  lr: 0.001\n";

}  // namespace

TEST(Config, BaseChainDeepMergesAndChildWins) {
  TempDir d;
  write_file(d / "a.yaml", "model:\n  depth: 3\n  norm:\n    type: layernorm\n    eps: 1.0e-5\noptim:\n  lr: 0.1\n");
  write_file(d / "sub/b.yaml", "base: ../a.yaml\nmodel:\n  norm:\n    type: dyt\n");
  write_file(d / "c.yaml", "base: [sub/b.yaml]\noptim:\n  lr: 0.002\n");
  ConfigTree t = load_config(d / "c.yaml");
  ExperimentConfig cfg = decode(t);
  EXPECT_EQ(cfg.model().norm.type, "dyt");
  EXPECT_DOUBLE_EQ(cfg.model().norm.eps, 1e-5);  // kept from the grandparent
  EXPECT_DOUBLE_EQ(cfg.optim.lr, 0.002);
  // Origins point at the file that set the value.
  EXPECT_NE(t.origin_of("model.norm.type").file.find("b.yaml"), std::string::npos);
  EXPECT_EQ(t.origin_of("model.norm.type").line, 4);
  EXPECT_NE(t.origin_of("model.depth").file.find("a.yaml"), std::string::npos);
}

TEST(Config, DottedKeysEqualNesting) {
  ConfigTree a = parse_config_text("model.norm.type: dyt\noptim.lr: 0.5\n", "a");
  ConfigTree b = parse_config_text("model:\n  norm:\n    type: dyt\noptim:\n  lr: 0.5\n", "b");
  EXPECT_EQ(to_yaml_string(a.root), to_yaml_string(b.root));
}

TEST(Config, SetOverridesWinAndParseYaml) {
  ConfigTree t = parse_config_text(kMinimal, "x.yaml");
  apply_override(t, "optim.betas=[0.9, 0.95]");
  apply_override(t, "model.norm.type=rmsnorm");
  apply_override(t, "optim.lr=3e-4");
  ExperimentConfig cfg = decode(t);
  EXPECT_DOUBLE_EQ(cfg.optim.lr, 3e-4);
  ASSERT_EQ(cfg.optim.betas.size(), 2u);
  EXPECT_DOUBLE_EQ(cfg.optim.betas[1], 0.95);
  EXPECT_EQ(cfg.model().norm.type, "rmsnorm");
  EXPECT_EQ(t.origin_of("optim.lr").file, "--set optim.lr=3e-4");
}

TEST(Config, AllProblemsReportedAtOnceWithFileLineAndFix) {
  TempDir d;
  write_file(d / "bad.yaml",
             "optim:\n  lr: -1\n  nmae: adamw\nmodel:\n  depth: two\n  norm:\n    type: dytt\ndata:\n  batch_size: 0\n");
  std::string msg = dyt::test::error_of<ConfigError>([&] { decode(load_config(d / "bad.yaml")); });
  EXPECT_NE(msg.find("config errors (5)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.yaml:2:7: optim.lr: value -1 is out of range: must be >= 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("optim.nmae: unknown key (did you mean 'name'?)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.yaml:5:10: model.depth: expected an integer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.norm.type: 'dytt' is not allowed (did you mean 'dyt'?); allowed: derf, dyisru, dyt"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("data.batch_size: value 0 is out of range: must be > 0"), std::string::npos) << msg;
  EXPECT_LT(msg.find("optim.lr"), msg.find("model.depth"));  // in file order
  EXPECT_EQ(msg.find("no learning rate"), std::string::npos) << "no follow-on error for a rejected value";
}

namespace {
// Records the full key of every float field of a schema (groups included: decoders check them all).
class FloatKeys : public FieldVisitor {
 public:
  std::vector<std::string> keys;
  void field(const std::string&, bool&, const FieldSpec&) override {}
  void field(const std::string&, int64_t&, const FieldSpec&) override {}
  void field(const std::string& k, double&, const FieldSpec&) override { keys.push_back(full(k)); }
  void field(const std::string&, std::string&, const FieldSpec&) override {}
  void field(const std::string&, std::vector<int64_t>&, const FieldSpec&) override {}
  void field(const std::string& k, std::vector<double>&, const FieldSpec&) override { keys.push_back(full(k)); }
  void field(const std::string&, std::vector<std::string>&, const FieldSpec&) override {}
  void section(const std::string& k, const std::string&, const std::function<void()>& body) override {
    path_.push_back(k);
    body();
    path_.pop_back();
  }
  void group(bool, const std::function<void()>& body) override { body(); }
  void check(bool, const std::string&, const std::string&) override {}

 private:
  std::string full(const std::string& k) const {
    std::string out;
    for (const auto& p : path_) out += p + ".";
    return out + k;
  }
  std::vector<std::string> path_;
};
}  // namespace

TEST(Config, EveryFloatFieldRefusesNanAndInfinityNamingTheKey) {
  int checked = 0;
  for (const std::string& type : model_registry().names()) {
    ExperimentConfig cfg;
    cfg.model_type = type;
    FloatKeys fk;
    cfg.visit(fk);
    ASSERT_GT(fk.keys.size(), 10u) << type;
    for (size_t i = 0; i < fk.keys.size(); ++i) {
      const std::string& key = fk.keys[i];
      const char* bad = i % 3 == 0 ? ".nan" : i % 3 == 1 ? ".inf" : "-.inf";
      ConfigTree t = parse_config_text(std::string(kMinimal) + "model:\n  type: " + type + "\n", "x.yaml");
      apply_override(t, key + "=" + bad);  // the --set path; the file path is the same decoder
      try {
        decode(t);
        ADD_FAILURE() << key << "=" << bad << " was accepted (model " << type << ")";
      } catch (const ConfigError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(key), std::string::npos) << msg;
        EXPECT_NE(msg.find("not a finite number"), std::string::npos) << msg;
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 40);
  // In a file, with its line.
  TempDir d;
  write_file(d / "e.yaml", "optim:\n  lr: 0.001\nmodel:\n  norm:\n    type: dyt\n    alpha_init: .nan\n");
  try {
    decode(load_config(d / "e.yaml"));
    ADD_FAILURE() << "alpha_init: .nan accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("e.yaml:6"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.norm.alpha_init"), std::string::npos) << e.what();
  }
}

TEST(Config, CrossFieldRules) {
  std::string msg = dyt::test::error_of<ConfigError>([] {
    ConfigTree t = parse_config_text("optim:\n  lr: 0.1\n  blr: 0.1\nmodel:\n  img_size: 30\n  patch_size: 16\n  embed_dim: 100\n  num_heads: 12\n", "x.yaml");
    decode(t);
  });
  EXPECT_NE(msg.find("give optim.lr or optim.blr, not both"), std::string::npos) << msg;
  EXPECT_NE(msg.find("patch_size 16 does not divide img_size 30"), std::string::npos) << msg;
  EXPECT_NE(msg.find("num_heads 12 does not divide embed_dim 100"), std::string::npos) << msg;
  EXPECT_NE(dyt::test::error_of<ConfigError>([] { decode(parse_config_text("optim: {}\n", "x")); }).find("no learning rate"), std::string::npos);
}

TEST(Config, WrongTypesNameTheKind) {
  std::string msg = dyt::test::error_of<ConfigError>([] { decode(parse_config_text("optim:\n  lr: 0.1\n  betas: 0.9x\nmodel: 3\nseeds: [a]\n", "t.yaml")); });
  EXPECT_NE(msg.find("optim.betas: element 0 ('0.9x') is not one of the expected numbers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model: expected a mapping of keys, got a scalar '3'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("seeds: element 0 ('a')"), std::string::npos) << msg;
}

TEST(Config, MalformedYamlNamesLineAndColumn) {
  TempDir d;
  write_file(d / "m.yaml", "optim:\n  lr: [0.1\n");
  std::string msg = dyt::test::error_of<ConfigError>([&] { load_config(d / "m.yaml"); });
  EXPECT_NE(msg.find("m.yaml:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("malformed YAML"), std::string::npos) << msg;
}

TEST(Config, MissingBaseAndCycleAreErrors) {
  TempDir d;
  write_file(d / "a.yaml", "base: nothere.yaml\n");
  std::string msg = dyt::test::error_of<ConfigError>([&] { load_config(d / "a.yaml"); });
  EXPECT_NE(msg.find("base file 'nothere.yaml' not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a.yaml:1:7: base: base file"), std::string::npos) << msg;
  write_file(d / "x.yaml", "base: y.yaml\n");
  write_file(d / "y.yaml", "base: x.yaml\n");
  msg = dyt::test::error_of<ConfigError>([&] { load_config(d / "x.yaml"); });
  EXPECT_NE(msg.find("cycle of base files: x.yaml -> y.yaml -> x.yaml"), std::string::npos) << msg;
}

TEST(Config, InactiveGroupKeysAcceptedButNotEmitted) {
  // alpha_init belongs to DyT; with LayerNorm it is accepted (variants switch the type) but the
  // resolved config leaves it out.
  ConfigTree t = parse_config_text("optim:\n  lr: 0.1\nmodel:\n  norm:\n    type: layernorm\n    alpha_init: 0.8\n", "x");
  ExperimentConfig cfg = decode(t);
  YAML::Node enc = encode_config([&](FieldVisitor& v) { cfg.visit(v); });
  EXPECT_FALSE(enc["model"]["norm"]["alpha_init"].IsDefined());
  EXPECT_TRUE(enc["model"]["norm"]["eps"].IsDefined());
}

TEST(Config, EncodeDecodeRoundTrip) {
  ConfigTree t = parse_config_text("optim:\n  lr: 0.0001\n  betas: [0.9, 0.95]\nmodel:\n  norm:\n    type: dyt\n    alpha_init: 0.7\n", "x");
  ExperimentConfig a = decode(t);
  const std::string y1 = to_yaml_string(encode_config([&](FieldVisitor& v) { a.visit(v); }));
  ExperimentConfig b = decode(parse_config_text(y1, "roundtrip"));
  const std::string y2 = to_yaml_string(encode_config([&](FieldVisitor& v) { b.visit(v); }));
  EXPECT_EQ(y1, y2);
  EXPECT_NE(y1.find("lr: 0.0001"), std::string::npos) << y1;  // shortest round-trip formatting
}

TEST(Plan, VariantsTimesSeedsWithOverridesInPrecedence) {
  TempDir d;
  write_file(d / "e.yaml",
             "optim:\n  lr: 0.1\nmodel.norm.type: layernorm\nseeds: [0, 1]\nvariants:\n  ln: {}\n  dyt:\n    model.norm.type: dyt\n    optim.lr: 0.2\n");
  Experiment e = load_experiment((d / "e.yaml").string());
  EXPECT_EQ(e.variant_names, (std::vector<std::string>{"ln", "dyt"}));
  PlanRequest req;
  req.out = d / "out";
  req.sets = {"optim.lr=0.3"};
  auto runs = plan_runs(e, req);
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[2].variant, "dyt");
  EXPECT_EQ(runs[2].config.model().norm.type, "dyt");
  EXPECT_DOUBLE_EQ(runs[2].config.optim.lr, 0.3);  // command line beats the variant
  EXPECT_EQ(runs[3].seed, 1);
  EXPECT_EQ(runs[3].dir, d / "out" / "e" / "dyt" / "seed1");
  EXPECT_NE(runs[0].resolved_yaml.find("variant: ln"), std::string::npos);
  // Unknown variants are named with the known ones.
  req.variants = {"dytt"};
  std::string msg = dyt::test::error_of<ConfigError>([&] { plan_runs(e, req); });
  EXPECT_NE(msg.find("unknown variant of e 'dytt' (did you mean 'dyt'?)"), std::string::npos) << msg;
}

TEST(Plan, ProblemsInVariantsAreTaggedWithTheVariant) {
  TempDir d;
  write_file(d / "e.yaml", "optim:\n  lr: 0.1\nvariants:\n  good: {}\n  bad:\n    model.norm.squash: tnah\n");
  Experiment e = load_experiment((d / "e.yaml").string());
  PlanRequest req;
  req.out = d.path();
  std::string msg = dyt::test::error_of<ConfigError>([&] { plan_runs(e, req); });
  EXPECT_NE(msg.find("e.yaml:6:24: model.norm.squash: 'tnah' is not allowed (did you mean 'tanh'?)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[variant bad]"), std::string::npos) << msg;
}

// Every fuzzer seed and every input the fuzzer ever crashed on, through the fuzzer's property.
#include "tests/fuzz/config_property.h"

TEST(ConfigFuzzRegressions, CorpusAndSavedCrashesPassTheProperty) {
  int n = 0;
  for (const char* sub : {"tests/fuzz/corpus", "tests/fuzz/regressions"}) {
    const std::filesystem::path dir = std::filesystem::path(DYT_SOURCE_DIR) / sub;
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
      if (!f.is_regular_file() || f.path().filename().string().front() == '.') continue;
      std::ifstream in(f.path(), std::ios::binary);
      std::string text((std::istreambuf_iterator<char>(in)), {});
      SCOPED_TRACE(f.path().string());
      EXPECT_NO_FATAL_FAILURE(dyt::fuzz::check_config_text(text));
      ++n;
    }
  }
  EXPECT_GE(n, 4);
}

// ---- the paper experiments against their official recipes (tests/golden/paper_recipes.yaml) ------
namespace {
// A dotted key of the resolved config, e.g. data.augment.mixup.
YAML::Node at_path(const YAML::Node& root, const std::string& dotted) {
  YAML::Node n;
  n.reset(root);  // (assignment would write into the tree: yaml-cpp's Node::operator= assigns values)
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    const std::string key = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const YAML::Node& cn = n;
    if (!cn.IsMap() || !cn[key]) return YAML::Node(YAML::NodeType::Undefined);
    n.reset(cn[key]);
    if (dot == std::string::npos) return n;
    start = dot + 1;
  }
}
// Equal as numbers when both are numbers, else as text (sequences element by element).
bool same_value(const YAML::Node& want, const YAML::Node& got) {
  if (!got.IsDefined()) return false;
  if (want.IsSequence()) {
    if (!got.IsSequence() || got.size() != want.size()) return false;
    for (size_t i = 0; i < want.size(); ++i)
      if (!same_value(want[i], got[i])) return false;
    return true;
  }
  if (!want.IsScalar() || !got.IsScalar()) return false;
  try {
    const double a = want.as<double>(), b = got.as<double>();
    return std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(a));
  } catch (const YAML::Exception&) {
    return want.Scalar() == got.Scalar();
  }
}
}  // namespace

TEST(Recipes, PaperExperimentsMatchTheOfficialCommands) {
  const YAML::Node table = YAML::LoadFile((suite_home() / "tests/golden/paper_recipes.yaml").string());
  int64_t checked = 0;
  std::set<std::string> experiments;
  for (const auto& exp : table) {
    const std::string name = exp.first.Scalar();
    experiments.insert(name);
    Experiment e = load_experiment(name);
    PlanRequest req;
    req.out = "/nonexistent";
    for (const auto& v : exp.second["variants"]) req.variants.push_back(v.Scalar());
    const std::vector<RunSpec> runs = plan_runs(e, req);
    std::set<std::string> variants_seen;
    for (const auto& run : runs) {
      variants_seen.insert(run.variant);
      const YAML::Node spec = run.stage.empty() ? exp.second : exp.second["stages"][run.stage];
      if (!spec) continue;  // a stage the table does not pin (e.g. the linear probe)
      const std::string where = name + " " + run.variant + (run.stage.empty() ? "" : " " + run.stage);
      const ExperimentConfig& c = run.config;
      const int64_t gpus = spec["gpus"].as<int64_t>();
      for (const auto& kv : spec) {
        const std::string k = kv.first.Scalar();
        if (k == "gpus" || k == "config" || k == "stages" || k == "variants") continue;
        if (k == "accum") EXPECT_EQ(accumulation_steps(c, gpus), kv.second.as<int64_t>()) << where;
        else if (k == "peak_lr") EXPECT_NEAR(effective_lr(c, gpus), kv.second.as<double>(), 1e-12) << where;
        else if (k == "total_batch") EXPECT_EQ(total_batch(c, gpus), kv.second.as<int64_t>()) << where;
        else if (k == "total_tokens")
          EXPECT_EQ(c.data.max_tokens * gpus * accumulation_steps(c, gpus), kv.second.as<int64_t>()) << where;
        else ADD_FAILURE() << "paper_recipes.yaml: unknown check '" << k << "' for " << where;
        ++checked;
      }
      // On one process the recipe's batch is kept by accumulation, at the same peak lr.
      if (spec["total_batch"]) {
        EXPECT_EQ(total_batch(c, 1), spec["total_batch"].as<int64_t>()) << where << " on 1 process";
        EXPECT_NEAR(effective_lr(c, 1), spec["peak_lr"].as<double>(), 1e-12) << where << " on 1 process";
      }
      const YAML::Node resolved = YAML::Load(run.resolved_yaml);
      for (const auto& kv : spec["config"]) {
        const YAML::Node got = at_path(resolved, kv.first.Scalar());
        EXPECT_TRUE(same_value(kv.second, got))
            << where << ": " << kv.first.Scalar() << " is " << (got.IsDefined() ? YAML::Dump(got) : "(absent)")
            << ", the official recipe has " << YAML::Dump(kv.second);
        ++checked;
      }
    }
    for (const auto& v : exp.second["variants"]) EXPECT_TRUE(variants_seen.count(v.Scalar())) << name << " " << v.Scalar();
  }
  // Every paper experiment has a row in the table.
  for (const auto& f : fs::directory_iterator(suite_home() / "experiments/paper"))
    EXPECT_TRUE(experiments.count("paper/" + f.path().stem().string())) << f.path() << " has no row in paper_recipes.yaml";
  EXPECT_GT(checked, 200);
}
