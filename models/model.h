// Model types, their typed options and the registry the runner builds models from.
// A model type pairs an options struct (which describes its fields to a FieldVisitor) with a
// builder. Presets (vit_b16, ...) are YAML files in configs/models/, not code.
#pragma once

#include <nlohmann/json.hpp>

#include <torch/torch.h>

#include <optional>

#include <memory>
#include <string>
#include <vector>

#include "models/norm/norm.h"
#include "core/options.h"
#include "core/registry.h"

namespace dyt {

// What an image model takes and gives; the classification task needs only this of a model.
struct ImageInput {
  int64_t size = 0, channels = 0, classes = 0;  // images size x size x channels -> classes logits
};

struct ModelOptions {
  virtual ~ModelOptions() = default;
  virtual void visit(FieldVisitor& v) = 0;
  virtual std::unique_ptr<ModelOptions> clone() const = 0;
  // Image models declare their input; others have none.
  virtual std::optional<ImageInput> image_input() const { return std::nullopt; }
  // The config.json written beside the weights, in the reference library's terms (timm's for the
  // ViT: architecture + model_args, which timm.create_model takes), plus the norm as "dyt_norm";
  // null when the model has none.
  virtual nlohmann::json interop_config() const { return nullptr; }
  NormOptions norm;
};

class Model : public torch::nn::Module {
 public:
  // A few lines describing the architecture (what `dyt model` prints above the count).
  virtual std::string summary() const = 0;
  // Parameters exempt from weight decay besides the 1-D ones (timm's no_weight_decay()).
  virtual std::vector<std::string> no_weight_decay() const { return {}; }
  // Layer index of a parameter for layer-wise learning-rate decay, and the number of layers
  // (BEiT/MAE convention: embeddings 0, block i is i + 1, head num_layers - 1).
  virtual int64_t layer_id(const std::string& param_name) const { (void)param_name; return 0; }
  virtual int64_t num_layers() const { return 1; }
};
using ModelPtr = std::shared_ptr<Model>;

// Image classifier interface: images [B, C, H, W] float -> logits [B, classes].
class Classifier : public Model {
 public:
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
};

struct ModelType {
  std::string help;
  std::function<std::unique_ptr<ModelOptions>()> make_options;
  std::function<ModelPtr(const ModelOptions&)> build;
};

const Registry<ModelType>& model_registry();
// Adds a model type (an extension, or a test's own model). Call before any config is built: a
// config holds options for the types registered when it was made.
void register_model_type(const std::string& name, ModelType type);

// Total number of elements over every parameter tensor (trainable or not; buffers excluded).
int64_t count_parameters(const torch::nn::Module& m);

// Every norm layer of a model with its dotted name, in registration order.
std::vector<std::pair<std::string, NormLayer>> norm_layers(torch::nn::Module& m);

// timm's trunc_normal_: normal(mean, std) truncated to the absolute interval [a, b].
void trunc_normal_(torch::Tensor t, double std = 0.02, double mean = 0.0, double a = -2.0, double b = 2.0);

}  // namespace dyt
