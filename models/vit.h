// Vision Transformer, equivalent to timm's VisionTransformer (same parameter names and init):
// conv patch embedding, class token, learned position embedding, pre-norm blocks, final norm
// (or fc_norm after average pooling, as timm does for global_pool='avg'), linear head.
#pragma once

#include "models/model.h"
#include "models/transformer.h"

namespace dyt {

struct ViTOptions : ModelOptions {
  int64_t img_size = 224, patch_size = 16, in_chans = 3, num_classes = 1000;
  int64_t embed_dim = 768, depth = 12, num_heads = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double drop_rate = 0.0, drop_path_rate = 0.0;
  std::string global_pool = "cls";
  double fc_norm_alpha_init = 0.0;  // > 0: alpha0 of a DyT-family fc_norm alone (global_pool avg)
  void visit(FieldVisitor& v) override;
  std::unique_ptr<ModelOptions> clone() const override { return std::make_unique<ViTOptions>(*this); }
  std::optional<ImageInput> image_input() const override { return ImageInput{img_size, in_chans, num_classes}; }
  nlohmann::json interop_config() const override;
};

class ViTImpl : public Classifier {
 public:
  explicit ViTImpl(const ViTOptions& o);
  torch::Tensor forward(const torch::Tensor& images) override;
  // Tokens after the blocks and the final norm, [B, 1 + N, D] (before pooling).
  torch::Tensor forward_features(const torch::Tensor& images);
  torch::Tensor forward_head(const torch::Tensor& tokens);
  std::string summary() const override;
  std::vector<std::string> no_weight_decay() const override { return {"pos_embed", "cls_token"}; }
  int64_t layer_id(const std::string& name) const override;
  int64_t num_layers() const override { return opts.depth + 2; }

  ViTOptions opts;
  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  NormLayer norm, fc_norm;  // one of the two, as timm
  Linear head{nullptr};
};

}  // namespace dyt
