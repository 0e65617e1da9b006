// Masked autoencoder (He et al., MAE), with facebookresearch/mae's module and parameter names:
// the ViT encoder sees only the visible patches (per-sample random masking that keeps the class
// token), a light decoder gets the encoded tokens plus a learned mask token in every masked slot
// and predicts the pixels of each patch; the loss is the MSE on masked patches only, optionally
// against per-patch normalised pixels (norm_pix_loss). Position embeddings are fixed 2-D sin-cos
// in encoder and decoder. The norm factory builds every norm of encoder AND decoder.
#pragma once

#include "models/model.h"
#include "models/transformer.h"

namespace dyt {

struct MAEOptions : ModelOptions {
  int64_t img_size = 224, patch_size = 16, in_chans = 3;
  int64_t embed_dim = 1024, depth = 24, num_heads = 16;
  int64_t decoder_embed_dim = 512, decoder_depth = 8, decoder_num_heads = 16;
  double mlp_ratio = 4.0;
  bool norm_pix_loss = false;
  double mask_ratio = 0.75;
  void visit(FieldVisitor& v) override;
  nlohmann::json interop_config() const override;
  std::unique_ptr<ModelOptions> clone() const override { return std::make_unique<MAEOptions>(*this); }
};

class MAEImpl : public Model {
 public:
  explicit MAEImpl(const MAEOptions& o);

  struct Masking {
    torch::Tensor kept;         // [N, len_keep, D] visible tokens
    torch::Tensor mask;         // [N, L] 0 = kept, 1 = removed, in the original patch order
    torch::Tensor ids_restore;  // [N, L] inverse of the shuffle
  };
  // Per-sample random masking by argsort of uniform noise (noise [N, L] may be given for tests).
  // Keeps round(L * (1 - ratio)) patches of each sample.
  Masking random_masking(const torch::Tensor& x, double ratio, const torch::Tensor& noise = {}) const;

  torch::Tensor patchify(const torch::Tensor& imgs) const;    // [N, C, H, W] -> [N, L, p*p*C]
  torch::Tensor unpatchify(const torch::Tensor& x) const;     // inverse
  // Per-patch targets: pixels, or (pixels - mean) / sqrt(var + 1e-6) with norm_pix_loss.
  torch::Tensor targets(const torch::Tensor& imgs) const;
  // Mean over masked patches of the per-patch MSE.
  torch::Tensor loss(const torch::Tensor& imgs, const torch::Tensor& pred, const torch::Tensor& mask) const;

  struct Output {
    torch::Tensor loss, pred, mask;
  };
  Output forward(const torch::Tensor& imgs, double mask_ratio, const torch::Tensor& noise = {});

  std::string summary() const override;

  MAEOptions opts;
  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed, mask_token, decoder_pos_embed;
  torch::nn::ModuleList blocks{nullptr}, decoder_blocks{nullptr};
  NormLayer norm, decoder_norm;
  Linear decoder_embed{nullptr}, decoder_pred{nullptr};
};

}  // namespace dyt
