// Model shapes, parameter counts against the paper's reference counts (timm), parameter names
// equal to timm's state-dict keys, and the helpers models share.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/model.h"
#include "models/transformer.h"
#include "models/vit.h"
#include "runner/train/components.h"

using namespace dyt;
using torch::Tensor;

namespace {
std::shared_ptr<ViTImpl> vit(int64_t dim, int64_t depth, int64_t heads, const std::string& norm = "layernorm",
                             const std::string& pool = "cls") {
  ViTOptions o;
  o.embed_dim = dim, o.depth = depth, o.num_heads = heads, o.global_pool = pool;
  o.norm.type = norm;
  return std::make_shared<ViTImpl>(o);
}
}  // namespace

TEST(ViT, ParameterCountsEqualTimm) {
  // timm 1.0.29 vit_{tiny,small,base,large}_patch16_224, 1000 classes (../shared/PAPER.md).
  EXPECT_EQ(count_parameters(*vit(192, 12, 3)), 5717416);
  EXPECT_EQ(count_parameters(*vit(384, 12, 6)), 22050664);
  EXPECT_EQ(count_parameters(*vit(768, 12, 12)), 86567656);
  EXPECT_EQ(count_parameters(*vit(1024, 24, 16)), 304326632);
}

TEST(ViT, DyTAddsOneParameterPerNormLayer) {
  auto ln = vit(192, 12, 3), d = vit(192, 12, 3, "dyt");
  EXPECT_EQ(norm_layers(*d).size(), 25u);  // 2 per block + final
  EXPECT_EQ(count_parameters(*d) - count_parameters(*ln), 25);
  auto avg = vit(192, 12, 3, "layernorm", "avg");
  EXPECT_EQ(count_parameters(*avg), count_parameters(*ln));  // fc_norm instead of norm, as timm
  EXPECT_TRUE(avg->named_parameters().contains("fc_norm.weight"));
  EXPECT_FALSE(avg->named_parameters().contains("norm.weight"));
}

TEST(ViT, FcNormTakesItsOwnAlpha0) {
  ViTOptions o;
  o.img_size = 8, o.patch_size = 4, o.in_chans = 1, o.num_classes = 3, o.embed_dim = 16, o.depth = 2, o.num_heads = 2;
  o.global_pool = "avg", o.norm.type = "dyt", o.norm.alpha_init = 0.5, o.fc_norm_alpha_init = 3.0;
  ViTImpl m(o);
  int n = 0;
  for (const auto& item : m.named_parameters(true)) {
    const std::string& k = item.key();
    if (k.size() < 6 || k.compare(k.size() - 6, 6, ".alpha") != 0) continue;
    EXPECT_FLOAT_EQ(item.value().item<float>(), k == "fc_norm.alpha" ? 3.0f : 0.5f) << k;
    ++n;
  }
  EXPECT_EQ(n, 2 * 2 + 1);  // two per block and fc_norm (no final norm under average pooling, as timm)
}

TEST(ViT, ParameterNamesAreTimmStateDictKeys) {
  auto m = vit(192, 2, 3, "dyt");
  auto p = m->named_parameters();
  for (const char* key : {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.norm1.weight",
                          "blocks.0.norm1.alpha", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight",
                          "blocks.1.norm2.bias", "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc2.bias", "norm.weight", "head.weight",
                          "head.bias"})
    EXPECT_TRUE(p.contains(key)) << key;
}

TEST(ViT, ShapesAndHeadlessFeatures) {
  ViTOptions o;
  o.img_size = 28, o.patch_size = 4, o.in_chans = 1, o.num_classes = 10, o.embed_dim = 32, o.depth = 2, o.num_heads = 4;
  auto m = std::make_shared<ViTImpl>(o);
  Tensor x = torch::randn({3, 1, 28, 28});
  EXPECT_EQ(m->forward(x).sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(m->forward_features(x).sizes(), (std::vector<int64_t>{3, 50, 32}));
  o.num_classes = 0;
  EXPECT_EQ(std::make_shared<ViTImpl>(o)->forward(x).sizes(), (std::vector<int64_t>{3, 32}));
  try {
    m->forward(torch::randn({1, 1, 32, 32}));
    FAIL();
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected images of 28x28"), std::string::npos);
  }
}

TEST(ViT, TimmInitialisation) {
  torch::manual_seed(0);
  auto m = vit(768, 12, 12);
  auto p = m->named_parameters();
  EXPECT_NEAR(p["pos_embed"].std().item<double>(), 0.02, 0.001);
  EXPECT_LT(p["cls_token"].abs().max().item<double>(), 1e-5);
  EXPECT_NEAR(p["blocks.3.mlp.fc1.weight"].std().item<double>(), 0.02, 0.001);
  EXPECT_EQ(p["blocks.3.attn.qkv.bias"].abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(p["blocks.0.norm1.weight"], torch::ones({768})));
}

TEST(ViT, LayerIdsForLayerDecay) {
  auto m = vit(64, 3, 4);
  EXPECT_EQ(m->num_layers(), 5);
  EXPECT_EQ(m->layer_id("pos_embed"), 0);
  EXPECT_EQ(m->layer_id("patch_embed.proj.weight"), 0);
  EXPECT_EQ(m->layer_id("blocks.0.attn.qkv.weight"), 1);
  EXPECT_EQ(m->layer_id("blocks.2.norm2.weight"), 3);
  EXPECT_EQ(m->layer_id("head.weight"), 4);
}

TEST(ViT, DropPathOnlyWhileTraining) {
  Tensor x = torch::ones({1000, 4});
  Tensor y = drop_path(x, 0.25, true);
  const double kept = (y.select(1, 0) != 0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(kept, 0.75, 0.05);
  EXPECT_NEAR(y.mean().item<double>(), 1.0, 0.08);  // rescaled by 1 / keep
  EXPECT_TRUE(torch::equal(drop_path(x, 0.25, false), x));
}

TEST(ParamGroups, NoWeightDecayOnOneDimensionalParams) {
  auto m = vit(64, 2, 4, "dyt");
  auto groups = make_param_groups(*m, 0.05, 1.0);
  int64_t n = 0;
  for (const auto& g : groups) {
    for (size_t i = 0; i < g.names.size(); ++i) {
      const auto& name = g.names[i];
      const bool one_d = g.params[i].dim() <= 1;
      const bool listed = name == "pos_embed" || name == "cls_token";
      EXPECT_EQ(g.weight_decay, one_d || listed ? 0.0 : 0.05) << name;
      ++n;
    }
  }
  EXPECT_EQ(n, static_cast<int64_t>(m->parameters().size()));
  // alpha, norm weights and biases are all exempt
  for (const auto& g : groups)
    for (const auto& name : g.names)
      if (name.find("alpha") != std::string::npos || name.find("norm") != std::string::npos) EXPECT_EQ(g.weight_decay, 0.0) << name;
}

// fairseq's rule (optim.decay_all): every parameter decays, alpha, norm gains and biases included.
TEST(ParamGroups, DecayAllPutsEveryParameterUnderDecay) {
  auto m = vit(64, 2, 4, "dyt");
  int64_t n = 0, alphas = 0;
  for (const auto& g : make_param_groups(*m, 0.01, 1.0, /*decay_all=*/true))
    for (const auto& name : g.names) {
      EXPECT_EQ(g.weight_decay, 0.01) << name;
      ++n, alphas += name.find("alpha") != std::string::npos;
    }
  EXPECT_EQ(n, static_cast<int64_t>(m->parameters().size()));
  EXPECT_GT(alphas, 0);
}

TEST(ParamGroups, LayerDecayScalesByDepth) {
  auto m = vit(64, 2, 4);
  auto groups = make_param_groups(*m, 0.05, 0.5);
  for (const auto& g : groups)
    for (const auto& name : g.names) {
      const double expect = std::pow(0.5, static_cast<double>(m->num_layers() - 1 - m->layer_id(name)));
      EXPECT_DOUBLE_EQ(g.lr_scale, expect) << name;
    }
}

TEST(SinCos, MatchesTheMaeFormula) {
  Tensor e = sincos_pos_embed_2d(8, 3, true);
  EXPECT_EQ(e.sizes(), (std::vector<int64_t>{10, 8}));
  EXPECT_EQ(e[0].abs().sum().item<double>(), 0.0);  // cls row
  // Token at grid (h=1, w=2): first half encodes w=2, second half h=1; omega = 1/10000^(k/2).
  Tensor t = e[1 + 1 * 3 + 2];
  const double w = 2, h = 1;
  const double om[2] = {1.0, 1.0 / 100.0};
  for (int k = 0; k < 2; ++k) {
    EXPECT_NEAR(t[k].item<double>(), std::sin(w * om[k]), 1e-6);
    EXPECT_NEAR(t[2 + k].item<double>(), std::cos(w * om[k]), 1e-6);
    EXPECT_NEAR(t[4 + k].item<double>(), std::sin(h * om[k]), 1e-6);
    EXPECT_NEAR(t[6 + k].item<double>(), std::cos(h * om[k]), 1e-6);
  }
}

// split_qkv's one-buffer backward gives the projection the same gradient, bit for bit, as
// autograd's own backward of reshape + permute + unbind (timm's split), in fp32 and bf16, with all
// three parts used, and with one left out of the loss (an undefined gradient: zeros in its slot).
TEST(Attention, SplitQkvGradientsEqualUnbindBitForBit) {
  torch::manual_seed(3);
  const int64_t B = 2, N = 5, H = 3, Dh = 4, D = H * Dh;
  for (auto dtype : {torch::kFloat, torch::kBFloat16})
    for (bool use_v : {true, false}) {
      Tensor base = torch::randn({B, N, 3 * D}).to(dtype);
      Tensor w = torch::randn({B, H, N, Dh}).to(dtype);
      auto loss = [&](const Tensor& q, const Tensor& k, const Tensor& v) {
        Tensor l = (q * w).sum() + (k * k).sum();
        return use_v ? l + (v * w * w).sum() : l;
      };
      Tensor a = base.clone().requires_grad_(), b = base.clone().requires_grad_();
      auto ours = split_qkv(a * 1, H);  // a non-leaf input, as the projection's output is
      auto ref = (b * 1).reshape({B, N, 3, H, Dh}).permute({2, 0, 3, 1, 4}).unbind(0);
      for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(ours[i].sizes(), ref[i].sizes());
        EXPECT_TRUE(torch::equal(ours[i], ref[i])) << "part " << i;
      }
      loss(ours[0], ours[1], ours[2]).backward();
      loss(ref[0], ref[1], ref[2]).backward();
      EXPECT_TRUE(torch::equal(a.grad(), b.grad())) << c10::toString(dtype) << (use_v ? "" : ", v unused");
      EXPECT_GT(a.grad().abs().sum().item<double>(), 0.0);
    }
  EXPECT_THROW(split_qkv(torch::randn({2, 5, 10}), 3), c10::Error);  // 10 is not 3 x heads x Dh
}

// The attention block through split_qkv: the same output and parameter gradients as the same
// weights through timm's unbind, with and without a key-padding mask.
TEST(Attention, MatchesTheUnbindFormulation) {
  torch::manual_seed(4);
  const int64_t B = 2, N = 6, D = 16, H = 4;
  Attention attn(D, H, true);
  Tensor x = torch::randn({B, N, D});
  Tensor pad = torch::zeros({B, N}, torch::kBool);
  pad[1][5] = true, pad[1][4] = true;
  for (const Tensor& mask : {Tensor(), pad}) {
    attn->zero_grad();
    Tensor y = attn->forward(x, mask);
    (y * y).sum().backward();
    Tensor g_qkv = attn->qkv->weight.grad().clone(), g_proj = attn->proj->weight.grad().clone();
    attn->zero_grad();
    auto parts = attn->qkv->forward(x).reshape({B, N, 3, H, D / H}).permute({2, 0, 3, 1, 4}).unbind(0);
    std::optional<Tensor> m;
    if (mask.defined()) m = mask.logical_not().view({B, 1, 1, N});
    Tensor o = at::scaled_dot_product_attention(parts[0], parts[1], parts[2], m);
    Tensor y_ref = attn->proj->forward(o.transpose(1, 2).reshape({B, N, D}));
    (y_ref * y_ref).sum().backward();
    EXPECT_TRUE(torch::equal(y, y_ref));
    EXPECT_TRUE(torch::equal(g_qkv, attn->qkv->weight.grad()));
    EXPECT_TRUE(torch::equal(g_proj, attn->proj->weight.grad()));
  }
}
