// MAE: parameter counts against the reference implementation, masking, the masked-patch loss,
// norm_pix targets, and fine-tuning loading exactly the pretrained encoder.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/mae.h"
#include "models/vit.h"
#include "core/io.h"
#include "runner/train/components.h"
#include "runner/train/loop.h"
#include "test_util.h"

using namespace dyt;
using torch::Tensor;

namespace {
MAEOptions small() {
  MAEOptions o;
  o.img_size = 16, o.patch_size = 4, o.in_chans = 1, o.embed_dim = 16, o.depth = 2, o.num_heads = 2;
  o.decoder_embed_dim = 8, o.decoder_depth = 1, o.decoder_num_heads = 2;
  return o;
}
}  // namespace

TEST(MAE, ParameterCountsEqualTheReference) {
  MAEOptions b;  // mae_vit_base_patch16_dec512d8b
  b.embed_dim = 768, b.depth = 12, b.num_heads = 12;
  EXPECT_EQ(count_parameters(MAEImpl(b)), 111907840);  // fixed position embeddings included
  b.norm.type = "dyt";
  // encoder: 2 per block + final; decoder: 2 per block + final
  EXPECT_EQ(count_parameters(MAEImpl(b)), 111907840 + 25 + 17);
}

TEST(MAE, MaskingKeepsRoundedCountDiffersPerSampleAndRestoreInverts) {
  torch::manual_seed(0);
  auto m = std::make_shared<MAEImpl>(small());
  for (double ratio : {0.75, 0.7, 0.5, 0.1}) {
    Tensor x = torch::arange(4 * 49 * 3, torch::kFloat).view({4, 49, 3});
    auto r = m->random_masking(x, ratio);
    const int64_t keep = std::lround(49 * (1 - ratio));
    EXPECT_EQ(r.kept.size(1), keep) << ratio;
    EXPECT_TRUE(torch::equal(r.mask.sum(1), torch::full({4}, static_cast<float>(49 - keep)))) << ratio;
    EXPECT_FALSE(torch::equal(r.mask[0], r.mask[1])) << "samples get their own masks";
    // kept tokens are exactly the rows where mask == 0, in shuffled order
    for (int64_t n = 0; n < 4; ++n) {
      Tensor rows = r.kept[n].select(1, 0) / 3 - n * 49;  // row index of each kept token
      Tensor expect = torch::nonzero(r.mask[n] == 0).flatten().to(torch::kFloat);
      EXPECT_TRUE(torch::equal(std::get<0>(rows.sort()), expect));
    }
    // ids_restore inverts the shuffle: gathering the shuffled order back gives 0..L-1
    Tensor shuffle = torch::argsort(r.ids_restore, int64_t{1}, false);
    EXPECT_TRUE(torch::equal(torch::gather(shuffle, 1, r.ids_restore), torch::arange(49).expand({4, 49})));
  }
}

TEST(MAE, PatchifyRoundTripsAndNormPixTargets) {
  MAEOptions o = small();
  o.norm_pix_loss = true;
  MAEImpl m(o);
  Tensor imgs = torch::randn({2, 1, 16, 16});
  Tensor p = m.patchify(imgs);
  EXPECT_EQ(p.sizes(), (std::vector<int64_t>{2, 16, 16}));
  EXPECT_TRUE(torch::equal(m.unpatchify(p), imgs));
  EXPECT_TRUE(torch::equal(p[0][1], imgs[0][0].slice(0, 0, 4).slice(1, 4, 8).flatten()));  // patch (0, 1)
  Tensor t = m.targets(imgs);
  EXPECT_LT(t.mean(-1).abs().max().item<double>(), 1e-5);
  Tensor expect = (p - p.mean(-1, true)) / torch::sqrt(p.var(-1, true, true) + 1e-6);  // MAE's formula
  EXPECT_LT((t - expect).abs().max().item<double>(), 1e-6);
}

TEST(MAE, LossCountsMaskedPatchesOnly) {
  MAEImpl m(small());
  Tensor imgs = torch::randn({2, 1, 16, 16});
  Tensor mask = torch::zeros({2, 16});
  mask.slice(1, 0, 5).fill_(1);
  Tensor pred = torch::randn({2, 16, 16});
  const double base = m.loss(imgs, pred, mask).item<double>();
  Tensor visible_changed = pred.clone();
  visible_changed.slice(1, 5).add_(10.0);
  EXPECT_DOUBLE_EQ(m.loss(imgs, visible_changed, mask).item<double>(), base);
  Tensor masked_changed = pred.clone();
  masked_changed.slice(1, 0, 1).add_(1.0);
  EXPECT_NE(m.loss(imgs, masked_changed, mask).item<double>(), base);
  // Formula: mean over masked patches of the mean squared error per patch.
  Tensor per = (pred - m.patchify(imgs)).pow(2).mean(-1);
  EXPECT_NEAR(base, (per.slice(1, 0, 5).sum() / 10).item<double>(), 1e-6);
}

TEST(MAE, ForwardShapesAndLearnsOnATinyProblem) {
  torch::manual_seed(1);
  auto m = std::make_shared<MAEImpl>(small());
  Tensor imgs = torch::randn({4, 1, 16, 16});
  auto out = m->forward(imgs, 0.75);
  EXPECT_EQ(out.pred.sizes(), (std::vector<int64_t>{4, 16, 16}));
  EXPECT_EQ(out.mask.sizes(), (std::vector<int64_t>{4, 16}));
  OptimOptions oo;
  oo.lr = 3e-3;
  Optimizer opt(oo, make_param_groups(*m, 0.0, 1.0));
  Tensor noise = torch::rand({4, 16});
  const double first = m->forward(imgs, 0.75, noise).loss.item<double>();
  for (int i = 0; i < 60; ++i) {
    m->forward(imgs, 0.75, noise).loss.backward();
    opt.step(3e-3);
    opt.zero_grad();
  }
  EXPECT_LT(m->forward(imgs, 0.75, noise).loss.item<double>(), 0.5 * first);
  EXPECT_FALSE(m->named_parameters()["pos_embed"].requires_grad());  // fixed sin-cos
}

TEST(MAE, FineTuningLoadsExactlyThePretrainedEncoder) {
  dyt::test::TempDir d;
  torch::manual_seed(2);
  MAEOptions mo = small();
  mo.norm.type = "dyt";
  auto mae = std::make_shared<MAEImpl>(mo);
  {
    torch::NoGradGuard ng;  // move every weight away from its init
    for (auto& p : mae->parameters()) p.add_(torch::randn_like(p));
  }
  std::filesystem::create_directories(d / "seed0" / "pretrain");
  write_safetensors(d / "seed0" / "pretrain" / "model.safetensors", state_dict(*mae));

  RunSpec spec;
  spec.stage = "finetune";
  spec.stages = {"pretrain", "finetune"};
  spec.dir = d / "seed0" / "finetune";
  spec.config.init.from_stage = "pretrain";
  spec.config.init.head_init_std = 2e-5;
  RunContext ctx{spec};
  ViTOptions vo;
  vo.img_size = 16, vo.patch_size = 4, vo.in_chans = 1, vo.embed_dim = 16, vo.depth = 2, vo.num_heads = 2;
  vo.num_classes = 3, vo.global_pool = "avg";
  vo.norm.type = "dyt";
  auto vit = std::make_shared<ViTImpl>(vo);
  nlohmann::json report = initialise_from(ctx, *vit);
  auto src = mae->named_parameters();
  int64_t compared = 0;
  for (const auto& item : vit->named_parameters()) {
    const std::string& k = item.key();
    const bool encoder = k.rfind("blocks.", 0) == 0 || k.rfind("patch_embed.", 0) == 0 || k == "cls_token" || k == "pos_embed";
    if (encoder) {
      ASSERT_TRUE(src.contains(k)) << k;
      EXPECT_TRUE(torch::equal(item.value(), src[k])) << k;
      ++compared;
    }
  }
  EXPECT_EQ(compared, static_cast<int64_t>(report["loaded"].get<size_t>()));
  EXPECT_EQ(report["shape_mismatch"].size(), 0u);
  EXPECT_LT(vit->named_parameters()["head.weight"].abs().max().item<double>(), 1e-4);  // re-initialised (std 2e-5)
  EXPECT_EQ(vit->named_parameters()["head.bias"].abs().sum().item<double>(), 0.0);
  // A variant that does not run the pretraining stage trains from scratch, and says so.
  spec.stages = {"finetune"};
  auto fresh = std::make_shared<ViTImpl>(vo);
  nlohmann::json skipped = initialise_from(ctx, *fresh);
  EXPECT_NE(skipped["skipped"].get<std::string>().find("from scratch"), std::string::npos);
}
