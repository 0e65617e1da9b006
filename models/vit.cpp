// The Vision Transformer classifier, timm-compatible names and init (models/vit.h).
#include "models/vit.h"

#include <fmt/format.h>

namespace dyt {

using torch::Tensor;

nlohmann::json ViTOptions::interop_config() const {
  // timm's layout (as on the Hugging Face hub): timm.create_model(architecture, **model_args).
  nlohmann::json args = {{"img_size", img_size},     {"patch_size", patch_size}, {"in_chans", in_chans},
                         {"num_classes", num_classes}, {"embed_dim", embed_dim},   {"depth", depth},
                         {"num_heads", num_heads},     {"mlp_ratio", mlp_ratio},   {"qkv_bias", qkv_bias},
                         {"global_pool", global_pool == "avg" ? "avg" : "token"}};
  nlohmann::json out = {{"architecture", "vit_base_patch16_224"}, {"num_classes", num_classes},
                        {"num_features", embed_dim}, {"global_pool", args["global_pool"]}, {"model_args", args}};
  // timm builds LayerNorm (eps 1e-6); any other norm must replace each of them (python/dyt_timm.py).
  out["dyt_norm"] = {{"type", norm.type}, {"eps", norm.eps}, {"alpha_init", norm.alpha_init}, {"squash", norm.squash},
                     {"learnable_alpha", norm.learnable_alpha}};
  return out;
}

void ViTOptions::visit(FieldVisitor& v) {
  v.field("img_size", img_size, doc("input image side in pixels").gt(0));
  v.field("patch_size", patch_size, doc("patch side in pixels; must divide img_size").gt(0));
  v.field("in_chans", in_chans, doc("input channels (3 for RGB, 1 for grey)").gt(0));
  v.field("num_classes", num_classes, doc("classifier outputs; 0 removes the head").ge(0));
  v.field("embed_dim", embed_dim, doc("token width D").gt(0));
  v.field("depth", depth, doc("number of Transformer blocks").gt(0));
  v.field("num_heads", num_heads, doc("attention heads; must divide embed_dim").gt(0));
  v.field("mlp_ratio", mlp_ratio, doc("MLP hidden width / embed_dim").gt(0));
  v.field("qkv_bias", qkv_bias, doc("bias in the qkv projection"));
  v.field("drop_rate", drop_rate, doc("dropout before the head").ge(0).lt(1));
  v.field("drop_path_rate", drop_path_rate, doc("stochastic depth of the last block (linear in depth)").ge(0).lt(1));
  v.field("global_pool", global_pool, doc("cls: class token; avg: mean of patch tokens then fc_norm").one_of({"cls", "avg"}));
  v.check(patch_size <= 0 || img_size % patch_size == 0, "patch_size",
          fmt::format("patch_size {} does not divide img_size {}; pick a divisor of {}", patch_size, img_size, img_size));
  v.check(num_heads <= 0 || embed_dim % num_heads == 0, "num_heads",
          fmt::format("num_heads {} does not divide embed_dim {}", num_heads, embed_dim));
  v.field("fc_norm_alpha_init", fc_norm_alpha_init,
          doc("global_pool avg: alpha0 of a DyT-family fc_norm alone (the norm after pooling, whose inputs are means "
              "over tokens); 0 = model.norm.alpha_init")
              .ge(0));
  v.section("norm", "normalization layer (LayerNorm, RMSNorm, DyT, ...) used in every block and at the end",
            [&] { norm.visit(v); });
}

ViTImpl::ViTImpl(const ViTOptions& o) : opts(o) {
  NormFactory make_norm = make_norm_factory(o.norm);
  patch_embed = register_module("patch_embed", PatchEmbed(o.img_size, o.patch_size, o.in_chans, o.embed_dim));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, o.embed_dim}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, patch_embed->num_patches + 1, o.embed_dim}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    BlockOptions b;
    b.dim = o.embed_dim, b.heads = o.num_heads, b.mlp_ratio = o.mlp_ratio, b.qkv_bias = o.qkv_bias;
    b.drop_path = o.depth > 1 ? o.drop_path_rate * static_cast<double>(i) / (o.depth - 1) : 0.0;
    blocks->push_back(Block(b, make_norm));
  }
  if (o.global_pool == "avg") {
    NormOptions fc = o.norm;
    if (o.fc_norm_alpha_init > 0) fc.alpha_init = o.fc_norm_alpha_init;
    fc_norm = register_module("fc_norm", make_norm_factory(fc)(o.embed_dim));
  }
  else norm = register_module("norm", make_norm(o.embed_dim));
  if (o.num_classes > 0) head = register_module("head", Linear(o.embed_dim, o.num_classes));

  // timm init_weights(''): pos_embed trunc_normal(.02), cls_token normal(1e-6), Linear trunc_normal(.02)
  // with zero bias; the patch-embedding conv keeps PyTorch's default init.
  torch::NoGradGuard no_grad;
  trunc_normal_(pos_embed, 0.02);
  cls_token.normal_(0.0, 1e-6);
  init_linear_timm(*this);
}

Tensor ViTImpl::forward_features(const Tensor& images) {
  Tensor x = patch_embed->forward(images);
  x = torch::cat({cls_token.expand({x.size(0), -1, -1}).to(x.dtype()), x}, 1) + pos_embed;
  for (const auto& blk : *blocks) x = blk->as<BlockImpl>()->forward(x);
  return norm ? norm->forward(x) : x;
}

Tensor ViTImpl::forward_head(const Tensor& tokens) {
  Tensor x = opts.global_pool == "avg" ? tokens.slice(1, 1).mean(1) : tokens.select(1, 0);
  if (fc_norm) x = fc_norm->forward(x);
  if (opts.drop_rate > 0) x = torch::dropout(x, opts.drop_rate, is_training());
  return head ? head(x) : x;
}

Tensor ViTImpl::forward(const Tensor& images) { return forward_head(forward_features(images)); }

std::string ViTImpl::summary() const {
  std::string norm_desc = blocks->size() ? std::dynamic_pointer_cast<BlockImpl>(blocks->ptr(0))->norm1->describe() : "";
  return fmt::format(
      "VisionTransformer: {}x{} px, {} channels, patch {} -> {} tokens + cls\n"
      "  {} blocks x width {}, {} heads, MLP {}, pre-norm, drop_path {}\n"
      "  norm: {}\n"
      "  pool: {}, head: {} classes",
      opts.img_size, opts.img_size, opts.in_chans, opts.patch_size, patch_embed->num_patches, opts.depth,
      opts.embed_dim, opts.num_heads, static_cast<int64_t>(opts.embed_dim * opts.mlp_ratio), opts.drop_path_rate,
      norm_desc, opts.global_pool, opts.num_classes);
}

int64_t ViTImpl::layer_id(const std::string& name) const {
  if (name == "cls_token" || name == "pos_embed" || name.rfind("patch_embed", 0) == 0) return 0;
  if (name.rfind("blocks.", 0) == 0) return std::stoll(name.substr(7, name.find('.', 7) - 7)) + 1;
  return opts.depth + 1;
}

}  // namespace dyt
