// The model registry and helpers shared by all models.
#include <cmath>

#include "models/mae.h"
#include "models/model.h"
#include "models/vit.h"
#include "models/wav2vec2.h"

namespace dyt {

namespace {

template <class Options, class Impl>
ModelType model_type(std::string help) {
  return ModelType{std::move(help), [] { return std::make_unique<Options>(); },
                   [](const ModelOptions& o) -> ModelPtr {
                     return std::make_shared<Impl>(dynamic_cast<const Options&>(o));
                   }};
}

Registry<ModelType> build_model_registry() {
  Registry<ModelType> r("model type");
  r.add("vit", model_type<ViTOptions, ViTImpl>("Vision Transformer classifier (timm VisionTransformer)"));
  r.add("mae", model_type<MAEOptions, MAEImpl>("masked autoencoder: ViT encoder + light decoder (facebookresearch/mae)"));
  r.add("wav2vec2", model_type<W2V2Options, Wav2Vec2Impl>("wav2vec 2.0 pretraining model (transformers Wav2Vec2ForPreTraining)"));
  return r;
}

}  // namespace

namespace {
Registry<ModelType>& mutable_model_registry() {
  static Registry<ModelType> registry = build_model_registry();
  return registry;
}
}  // namespace

const Registry<ModelType>& model_registry() { return mutable_model_registry(); }

void register_model_type(const std::string& name, ModelType type) { mutable_model_registry().add(name, std::move(type)); }

int64_t count_parameters(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters(/*recurse=*/true)) n += p.numel();
  return n;
}

std::vector<std::pair<std::string, NormLayer>> norm_layers(torch::nn::Module& m) {
  std::vector<std::pair<std::string, NormLayer>> out;
  for (const auto& item : m.named_modules("", /*include_self=*/false))
    if (auto n = std::dynamic_pointer_cast<NormLayerImpl>(item.value())) out.emplace_back(item.key(), n);
  return out;
}

void trunc_normal_(torch::Tensor t, double std, double mean, double a, double b) {
  // Inverse-CDF sampling as timm/PyTorch: uniform in [cdf(a), cdf(b)], then the normal quantile.
  torch::NoGradGuard no_grad;
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double l = cdf((a - mean) / std), u = cdf((b - mean) / std);
  t.uniform_(2 * l - 1, 2 * u - 1);
  t.erfinv_();
  t.mul_(std * std::sqrt(2.0));
  t.add_(mean);
  t.clamp_(a, b);
}

}  // namespace dyt
