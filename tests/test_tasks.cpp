// Tasks behind the Task interface: the classification task trains any model that declares its
// image input and is a Classifier (here a two-layer MLP defined in this file and registered as
// an extension would be), through the shared setup path and the hook-based loop.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/io.h"
#include "models/model.h"
#include "runner/experiment/experiment.h"
#include "runner/tasks/image_data.h"
#include "runner/tasks/task.h"
#include "test_util.h"

using namespace dyt;
using dyt::test::TempDir;
using dyt::test::write_file;

namespace {

struct TinyMlpOptions : ModelOptions {
  int64_t img_size = 28, in_chans = 1, num_classes = 10, hidden = 64;
  void visit(FieldVisitor& v) override {
    v.field("img_size", img_size, doc("").ge(1));
    v.field("in_chans", in_chans, doc("").ge(1));
    v.field("num_classes", num_classes, doc("").ge(2));
    v.field("hidden", hidden, doc("").ge(1));
  }
  std::unique_ptr<ModelOptions> clone() const override { return std::make_unique<TinyMlpOptions>(*this); }
  std::optional<ImageInput> image_input() const override { return ImageInput{img_size, in_chans, num_classes}; }
};

class TinyMlpImpl : public Classifier {
 public:
  explicit TinyMlpImpl(const TinyMlpOptions& o) {
    fc1 = register_module("fc1", torch::nn::Linear(o.img_size * o.img_size * o.in_chans, o.hidden));
    fc2 = register_module("fc2", torch::nn::Linear(o.hidden, o.num_classes));
  }
  torch::Tensor forward(const torch::Tensor& images) override {
    return fc2(torch::relu(fc1(images.flatten(1))));
  }
  std::string summary() const override { return "a two-layer MLP (test model)"; }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

void register_tiny_mlp() {
  if (model_registry().contains("tiny_mlp_test")) return;
  register_model_type("tiny_mlp_test",
                      ModelType{"a two-layer MLP defined in tests/test_tasks.cpp",
                                [] { return std::make_unique<TinyMlpOptions>(); },
                                [](const ModelOptions& o) -> ModelPtr {
                                  return std::make_shared<TinyMlpImpl>(dynamic_cast<const TinyMlpOptions&>(o));
                                }});
}

}  // namespace

TEST(Tasks, ClassificationTrainsAModelOtherThanViT) {
  register_tiny_mlp();
  TempDir d;
  const std::string home = suite_home().string();
  write_file(d / "mlp.yaml", "base:\n  - " + home + "/configs/data/fashion_mnist.yaml\n  - " + home +
                                 "/configs/recipes/small_adamw.yaml\n"
                                 "task: classification\n"
                                 "model: {type: tiny_mlp_test, hidden: 64}\n"
                                 "data: {train_subset: 2048, val_subset: 500, batch_size: 64, augment: {hflip: 0}}\n"
                                 "schedule: {epochs: 1, warmup_epochs: 0.1}\n"
                                 "train: {log_every: 8}\n"
                                 "seeds: [0]\n");
  Experiment e = load_experiment((d / "mlp.yaml").string());
  PlanRequest req;
  req.out = d / "out";
  std::vector<RunSpec> runs = plan_runs(e, req);
  ASSERT_EQ(runs.size(), 1u);
  std::filesystem::create_directories(runs[0].dir);
  RunContext ctx{runs[0]};
  RunResult r = run_task(ctx);
  EXPECT_EQ(r.status, "finished");
  EXPECT_GT(r.summary.value("top1", 0.0), 50.0) << r.summary.dump();  // chance is 10 %
  EXPECT_EQ(r.summary["params"].get<int64_t>(), 784 * 64 + 64 + 64 * 10 + 10);
  // The task's metrics, with their direction, are in the summary for tables and figures.
  ASSERT_TRUE(r.summary.contains("metrics"));
  EXPECT_EQ(r.summary["metrics"][0]["name"], "top1");
  EXPECT_TRUE(r.summary["metrics"][0]["higher_is_better"].get<bool>());
  EXPECT_TRUE(std::filesystem::exists(runs[0].dir / "model.safetensors"));
  // Fashion-MNIST has train/test only: validation on 500 held-out training images per epoch, the
  // whole test set once at the end, as a "test" line and test_* keys.
  EXPECT_EQ(r.summary["n"].get<int64_t>(), 500);
  EXPECT_EQ(r.summary["test_n"].get<int64_t>(), 10000);
  EXPECT_GT(r.summary.value("test_top1", 0.0), 50.0);
  EXPECT_NE(r.summary["data"].get<std::string>().find("held out"), std::string::npos) << r.summary["data"];
  int64_t test_lines = 0;
  for (const auto& j : read_jsonl(runs[0].dir / "metrics.jsonl")) test_lines += j.value("split", "") == "test";
  EXPECT_EQ(test_lines, 1);
}

TEST(Tasks, HoldoutValidatesOnTheTailOfTheTrainingSetAndKeepsTheTestSplitApart) {
  auto open = [](const std::string& extra) {
    ExperimentConfig cfg;
    ConfigTree tree = parse_config_text("data: {dataset: synthetic, synthetic_size: 200, synthetic_image: 8, "
                                        "synthetic_channels: 1, batch_size: 10, augment: {hflip: 0}" + extra + "}\n"
                                        "optim: {lr: 0.001}\n", "test");
    decode_config(tree, [&](FieldVisitor& v) { cfg.visit(v); }, {"variants", "seeds", "base"});
    return open_image_data(cfg, 8, 1, 0, 1, 0);
  };
  ImageData auto_split = open("");  // synthetic data have a real validation split: no holdout
  auto_split.val->start_epoch(0);
  EXPECT_EQ(auto_split.train->samples_per_epoch(), 200);
  EXPECT_EQ(auto_split.val->samples_per_epoch(), 50);
  EXPECT_FALSE(auto_split.test);
  ImageData held = open(", holdout: 0.25");
  held.val->start_epoch(0);
  if (held.test) held.test->start_epoch(0);
  EXPECT_EQ(held.train->samples_per_epoch(), 150);
  EXPECT_EQ(held.val->samples_per_epoch(), 50);
  ASSERT_TRUE(held.test);
  EXPECT_EQ(held.test->samples_per_epoch(), 50);  // the data set's second split
  // The validation images are training samples 150..199 (no overlap with the 150 trained on).
  auto full = dataset_registry().get("synthetic").open([] {
    DatasetRequest q;
    q.split = "train", q.synthetic_size = 200, q.synthetic_image = 8, q.synthetic_channels = 1;
    return q;
  }());
  for (int64_t i : {0, 49}) {
    cv::Mat a = held.val_set->get(i).image, b = full->get(150 + i).image;
    EXPECT_EQ(cv::norm(a, b, cv::NORM_L1), 0.0) << i;
  }
  try {
    open(", holdout: 1.5");
    ADD_FAILURE() << "holdout 1.5 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("holdout"), std::string::npos) << e.what();
  }
}

TEST(Tasks, ClassificationRefusesAModelWithoutImageInput) {
  TempDir d;
  const std::string home = suite_home().string();
  write_file(d / "w.yaml", "base:\n  - " + home + "/configs/models/w2v2_small.yaml\n  - " + home +
                               "/configs/data/fashion_mnist.yaml\n  - " + home +
                               "/configs/recipes/small_adamw.yaml\ntask: classification\nseeds: [0]\n");
  Experiment e = load_experiment((d / "w.yaml").string());
  PlanRequest req;
  req.out = d / "out";
  std::vector<RunSpec> runs = plan_runs(e, req);
  RunContext ctx{runs[0]};
  try {
    run_task(ctx);
    ADD_FAILURE() << "a wav2vec 2.0 model was accepted for classification";
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("declares no image input"), std::string::npos) << err.what();
  }
}

TEST(Tasks, AccumulationMatchesTheLargerBatch) {
  // 1 process x batch 64 against 1 process x 32 x 2 micro-batches (and against data.total_batch_size
  // deriving the same accumulation): the same samples and pixels per update (per-sample seeded
  // augmentation), the same mean loss, the same gradients up to rounding.
  register_tiny_mlp();
  TempDir d;
  const std::string home = suite_home().string();
  auto run = [&](const std::string& name, const std::string& extra) {
    write_file(d / (name + ".yaml"),
               "base:\n  - " + home + "/configs/data/fashion_mnist.yaml\n  - " + home +
                   "/configs/recipes/small_adamw.yaml\n"
                   "task: classification\nmodel: {type: tiny_mlp_test, hidden: 32}\n"
                   "data: {train_subset: 1280, val_subset: 200, augment: {hflip: 0.5}}\n"
                   "schedule: {epochs: 2, warmup_epochs: 0.5}\ntrain: {log_every: 1}\nseeds: [0]\n" +
                   extra);
    Experiment e = load_experiment((d / (name + ".yaml")).string());
    PlanRequest req;
    req.out = d / "out";
    std::vector<RunSpec> runs = plan_runs(e, req);
    std::filesystem::create_directories(runs[0].dir);
    RunContext ctx{runs[0]};
    RunResult r = run_task(ctx);
    EXPECT_EQ(r.status, "finished") << name;
    std::vector<double> losses;
    for (const auto& j : read_jsonl(runs[0].dir / "metrics.jsonl"))
      if (j.value("split", "") == "train") losses.push_back(j["loss"].get<double>());
    return std::make_pair(losses, read_safetensors(runs[0].dir / "model.safetensors"));
  };
  auto [big, w_big] = run("big", "data.batch_size: 64\n");
  auto [acc, w_acc] = run("acc", "data.batch_size: 32\ntrain.accum_steps: 2\n");
  auto [tot, w_tot] = run("tot", "data.batch_size: 32\ndata.total_batch_size: 64\n");
  ASSERT_EQ(big.size(), 40u);  // 1280 / 64 = 20 updates an epoch, 2 epochs
  ASSERT_EQ(acc.size(), big.size());
  ASSERT_EQ(tot.size(), big.size());
  for (size_t i = 0; i < big.size(); ++i) {
    EXPECT_NEAR(acc[i], big[i], 1e-5 * std::abs(big[i])) << "update " << i + 1;
    EXPECT_EQ(acc[i], tot[i]) << "update " << i + 1;
  }
  for (const auto& t : w_big.tensors) {
    const torch::Tensor* other = w_acc.find(t.name);
    ASSERT_NE(other, nullptr) << t.name;
    EXPECT_LE((t.tensor - *other).abs().max().item<double>(), 1e-5) << t.name;
  }
}

TEST(Tasks, TotalBatchThatDoesNotDivideIsAConfigErrorNamingTheNumbers) {
  ExperimentConfig c;
  c.data.batch_size = 48, c.data.total_batch_size = 4096;
  try {
    accumulation_steps(c, 1);
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("4096 is not data.batch_size 48 x 1 process(es)"), std::string::npos) << e.what();
  }
  c.data.batch_size = 128;
  EXPECT_EQ(accumulation_steps(c, 8), 4);  // the paper's 4096 on 8 GPUs x 128
  EXPECT_EQ(total_batch(c, 8), 4096);
  c.optim.blr = 1.5e-4, c.optim.lr = 0;
  EXPECT_DOUBLE_EQ(effective_lr(c, 8), 1.5e-4 * 4096 / 256);
  c.train.accum_steps = 3;
  EXPECT_THROW(accumulation_steps(c, 8), ConfigError);  // contradicts the total
}
