// The masked autoencoder: ViT encoder on visible patches, light decoder, masked-patch loss (models/mae.h).
#include "models/mae.h"

#include <fmt/format.h>

#include <cmath>

namespace dyt {

nlohmann::json MAEOptions::interop_config() const {
  // transformers' ViTMAEConfig: ViTMAEForPreTraining(ViTMAEConfig(**config)) builds this model.
  // The weights keep facebookresearch/mae's names (models_mae.py); the mapping to transformers'
  // is to_hf() in tests/golden/mae_train_vs_transformers.py.
  return {{"architectures", {"ViTMAEForPreTraining"}},
          {"model_type", "vit_mae"},
          {"image_size", img_size},
          {"patch_size", patch_size},
          {"num_channels", in_chans},
          {"hidden_size", embed_dim},
          {"num_hidden_layers", depth},
          {"num_attention_heads", num_heads},
          {"intermediate_size", static_cast<int64_t>(embed_dim * mlp_ratio)},
          {"decoder_hidden_size", decoder_embed_dim},
          {"decoder_num_hidden_layers", decoder_depth},
          {"decoder_num_attention_heads", decoder_num_heads},
          {"decoder_intermediate_size", static_cast<int64_t>(decoder_embed_dim * mlp_ratio)},
          {"hidden_act", "gelu"},
          {"qkv_bias", true},
          {"layer_norm_eps", norm.eps},
          {"mask_ratio", mask_ratio},
          {"norm_pix_loss", norm_pix_loss},
          {"weights_layout", "facebookresearch/mae (models_mae.py) names; tests/golden/mae_train_vs_transformers.py "
                             "to_hf() maps them to transformers' ViTMAEForPreTraining"},
          {"dyt_norm", {{"type", norm.type}, {"eps", norm.eps}, {"alpha_init", norm.alpha_init}, {"squash", norm.squash}, {"learnable_alpha", norm.learnable_alpha}}}};
}

using torch::Tensor;

void MAEOptions::visit(FieldVisitor& v) {
  v.field("img_size", img_size, doc("input image side in pixels").gt(0));
  v.field("patch_size", patch_size, doc("patch side; must divide img_size").gt(0));
  v.field("in_chans", in_chans, doc("input channels").gt(0));
  v.field("embed_dim", embed_dim, doc("encoder width; divisible by 4 (sin-cos position embedding)").gt(0));
  v.field("depth", depth, doc("encoder blocks").gt(0));
  v.field("num_heads", num_heads, doc("encoder heads; must divide embed_dim").gt(0));
  v.field("decoder_embed_dim", decoder_embed_dim, doc("decoder width; divisible by 4").gt(0));
  v.field("decoder_depth", decoder_depth, doc("decoder blocks").gt(0));
  v.field("decoder_num_heads", decoder_num_heads, doc("decoder heads; must divide decoder_embed_dim").gt(0));
  v.field("mlp_ratio", mlp_ratio, doc("MLP hidden width / width").gt(0));
  v.field("norm_pix_loss", norm_pix_loss, doc("predict per-patch normalised pixels (the paper's MAE setting)"));
  v.field("mask_ratio", mask_ratio, doc("fraction of patches removed per sample").ge(0).lt(1));
  v.check(patch_size <= 0 || img_size % patch_size == 0, "patch_size",
          fmt::format("patch_size {} does not divide img_size {}", patch_size, img_size));
  v.check(num_heads <= 0 || embed_dim % num_heads == 0, "num_heads",
          fmt::format("num_heads {} does not divide embed_dim {}", num_heads, embed_dim));
  v.check(decoder_num_heads <= 0 || decoder_embed_dim % decoder_num_heads == 0, "decoder_num_heads",
          fmt::format("decoder_num_heads {} does not divide decoder_embed_dim {}", decoder_num_heads, decoder_embed_dim));
  v.check(embed_dim % 4 == 0 && decoder_embed_dim % 4 == 0, "embed_dim",
          "the sin-cos position embeddings need embed_dim and decoder_embed_dim divisible by 4");
  const int64_t patches = patch_size > 0 ? (img_size / patch_size) * (img_size / patch_size) : 0;
  v.check(patches == 0 || std::lround(patches * (1.0 - mask_ratio)) >= 1, "mask_ratio",
          fmt::format("mask_ratio {} leaves no visible patch of {}", mask_ratio, patches));
  v.section("norm", "normalization layer of encoder and decoder", [&] { norm.visit(v); });
}

MAEImpl::MAEImpl(const MAEOptions& o) : opts(o) {
  NormFactory make_norm = make_norm_factory(o.norm);
  patch_embed = register_module("patch_embed", PatchEmbed(o.img_size, o.patch_size, o.in_chans, o.embed_dim));
  const int64_t L = patch_embed->num_patches, grid = patch_embed->grid;
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, o.embed_dim}));
  // Fixed sin-cos embeddings, registered as non-trainable parameters as in the reference code
  // (so they are counted and saved under the same names).
  pos_embed = register_parameter("pos_embed", sincos_pos_embed_2d(o.embed_dim, grid, true).unsqueeze(0), false);
  blocks = register_module("blocks", torch::nn::ModuleList());
  BlockOptions b;
  b.dim = o.embed_dim, b.heads = o.num_heads, b.mlp_ratio = o.mlp_ratio, b.qkv_bias = true;
  for (int64_t i = 0; i < o.depth; ++i) blocks->push_back(Block(b, make_norm));
  norm = register_module("norm", make_norm(o.embed_dim));

  decoder_embed = register_module("decoder_embed", Linear(o.embed_dim, o.decoder_embed_dim));
  mask_token = register_parameter("mask_token", torch::zeros({1, 1, o.decoder_embed_dim}));
  decoder_pos_embed = register_parameter(
      "decoder_pos_embed", sincos_pos_embed_2d(o.decoder_embed_dim, grid, true).unsqueeze(0), false);
  decoder_blocks = register_module("decoder_blocks", torch::nn::ModuleList());
  BlockOptions d;
  d.dim = o.decoder_embed_dim, d.heads = o.decoder_num_heads, d.mlp_ratio = o.mlp_ratio, d.qkv_bias = true;
  for (int64_t i = 0; i < o.decoder_depth; ++i) decoder_blocks->push_back(Block(d, make_norm));
  decoder_norm = register_module("decoder_norm", make_norm(o.decoder_embed_dim));
  decoder_pred = register_module("decoder_pred",
                                 Linear(o.decoder_embed_dim, o.patch_size * o.patch_size * o.in_chans));
  (void)L;

  // MAE initialize_weights: patch projection xavier_uniform on its [D, C*p*p] view, cls and mask
  // tokens normal(0.02), Linear xavier_uniform with zero bias, norms at their defaults.
  torch::NoGradGuard ng;
  torch::Tensor w = patch_embed->proj->weight;
  torch::nn::init::xavier_uniform_(w.view({w.size(0), -1}));
  cls_token.normal_(0.0, 0.02);
  mask_token.normal_(0.0, 0.02);
  for (auto& child : modules(/*include_self=*/false))
    if (auto* lin = child->as<torch::nn::Linear>()) {
      torch::nn::init::xavier_uniform_(lin->weight);
      if (lin->bias.defined()) lin->bias.zero_();
    }
}

Tensor MAEImpl::patchify(const Tensor& imgs) const {
  const int64_t p = opts.patch_size, h = imgs.size(2) / p, w = imgs.size(3) / p, C = imgs.size(1);
  Tensor x = imgs.reshape({imgs.size(0), C, h, p, w, p});
  x = torch::einsum("nchpwq->nhwpqc", {x});
  return x.reshape({imgs.size(0), h * w, p * p * C});
}

Tensor MAEImpl::unpatchify(const Tensor& x) const {
  const int64_t p = opts.patch_size, C = opts.in_chans;
  const int64_t h = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(x.size(1))))), w = h;
  Tensor y = x.reshape({x.size(0), h, w, p, p, C});
  y = torch::einsum("nhwpqc->nchpwq", {y});
  return y.reshape({x.size(0), C, h * p, w * p});
}

MAEImpl::Masking MAEImpl::random_masking(const Tensor& x, double ratio, const Tensor& noise_in) const {
  const int64_t N = x.size(0), L = x.size(1), D = x.size(2);
  const int64_t keep = std::max<int64_t>(1, std::lround(static_cast<double>(L) * (1.0 - ratio)));
  Tensor noise = noise_in.defined() ? noise_in : torch::rand({N, L}, x.options().dtype(torch::kFloat));
  Tensor ids_shuffle = torch::argsort(noise, /*dim=*/int64_t{1}, /*descending=*/false);  // ascending: small noise is kept
  Tensor ids_restore = torch::argsort(ids_shuffle, /*dim=*/int64_t{1}, /*descending=*/false);
  Tensor ids_keep = ids_shuffle.slice(1, 0, keep);
  Masking m;
  m.kept = torch::gather(x, 1, ids_keep.unsqueeze(-1).expand({N, keep, D}));
  m.mask = torch::ones({N, L}, x.options());
  m.mask.slice(1, 0, keep).zero_();
  m.mask = torch::gather(m.mask, 1, ids_restore);
  m.ids_restore = ids_restore;
  return m;
}

Tensor MAEImpl::targets(const Tensor& imgs) const {
  Tensor t = patchify(imgs);
  if (!opts.norm_pix_loss) return t;
  Tensor mean = t.mean(-1, true), var = t.var(-1, /*unbiased=*/true, true);
  return (t - mean) / torch::sqrt(var + 1e-6);
}

Tensor MAEImpl::loss(const Tensor& imgs, const Tensor& pred, const Tensor& mask) const {
  Tensor per_patch = (pred.to(torch::kFloat) - targets(imgs)).pow(2).mean(-1);
  return (per_patch * mask).sum() / mask.sum();
}

MAEImpl::Output MAEImpl::forward(const Tensor& imgs, double mask_ratio, const Tensor& noise) {
  // Encoder on the visible patches (plus the class token).
  Tensor x = patch_embed->forward(imgs) + pos_embed.slice(1, 1);
  Masking m = random_masking(x, mask_ratio, noise);
  Tensor cls = (cls_token + pos_embed.slice(1, 0, 1)).expand({x.size(0), -1, -1}).to(m.kept.dtype());
  Tensor h = torch::cat({cls, m.kept}, 1);
  for (const auto& blk : *blocks) h = blk->as<BlockImpl>()->forward(h);
  h = norm->forward(h);
  // Decoder: mask tokens in the removed slots, unshuffled to the original order.
  Tensor d = decoder_embed(h);
  const int64_t N = d.size(0), L = m.ids_restore.size(1), Dd = d.size(2);
  Tensor masks = mask_token.to(d.dtype()).expand({N, L + 1 - d.size(1), Dd});
  Tensor seq = torch::cat({d.slice(1, 1), masks}, 1);
  seq = torch::gather(seq, 1, m.ids_restore.unsqueeze(-1).expand({N, L, Dd}));
  Tensor z = torch::cat({d.slice(1, 0, 1), seq}, 1) + decoder_pos_embed;
  for (const auto& blk : *decoder_blocks) z = blk->as<BlockImpl>()->forward(z);
  z = decoder_norm->forward(z);
  Tensor pred = decoder_pred(z).slice(1, 1);
  return {loss(imgs, pred, m.mask), pred, m.mask};
}

std::string MAEImpl::summary() const {
  std::string norm_desc = blocks->size() ? std::dynamic_pointer_cast<BlockImpl>(blocks->ptr(0))->norm1->describe() : "";
  return fmt::format(
      "MaskedAutoencoderViT: {}x{} px, {} channels, patch {} -> {} patches, mask ratio {}\n"
      "  encoder {} blocks x width {}, {} heads; decoder {} blocks x width {}, {} heads\n"
      "  norm (encoder and decoder): {}\n"
      "  loss: MSE on masked patches{}",
      opts.img_size, opts.img_size, opts.in_chans, opts.patch_size, patch_embed->num_patches, opts.mask_ratio, opts.depth,
      opts.embed_dim, opts.num_heads, opts.decoder_depth, opts.decoder_embed_dim, opts.decoder_num_heads, norm_desc,
      opts.norm_pix_loss ? ", per-patch normalised pixels" : "");
}

}  // namespace dyt
