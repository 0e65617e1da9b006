// Normalization layers and their drop-in replacements, behind one factory.
//
//   layernorm  y = (x - mean) / sqrt(var + eps) * weight + bias          (statistics over channels)
//   rmsnorm    y = x / sqrt(mean(x^2) + eps) * weight
//   dyt        y = weight * f(alpha * x) + bias, f in {tanh, hardtanh, sigmoid, identity},
//              alpha one scalar per layer (learnable, or fixed at alpha_init)
//   derf       y = weight * erf(alpha * x + shift) + bias                 (arXiv 2512.10938)
//   dyisru     y = weight * sqrt(C) * x / sqrt(x^2 + r) + bias, r > 0 one learnable scalar
//              initialised to C (arXiv 2503.21708: LN seen element-wise)
//   identity   y = x
//
// Every model takes a NormFactory and never names a norm: switching LN -> DyT is the single
// config key `model.norm.type`. Parameter names follow timm / the official DyT code
// (weight, bias, alpha), so checkpoints load in Python.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>

#include "core/options.h"
#include "core/registry.h"

namespace dyt {

struct NormOptions {
  std::string type = "layernorm";
  double eps = 1e-6;               // layernorm, rmsnorm (timm's ViT uses 1e-6)
  bool elementwise_affine = true;  // layernorm, rmsnorm
  double alpha_init = 0.5;         // dyt, derf: the paper's alpha0
  std::string squash = "tanh";     // dyt
  bool learnable_alpha = true;     // dyt, derf
  double shift_init = 0.0;         // derf
  std::string impl = "auto";       // dyt: auto | aten | fused
  void visit(FieldVisitor& v);
};

// Base of every norm layer. `capture`, when set, receives the layer's input and its output
// before the affine transform (the paper's Fig. 2/4 analysis); it costs nothing when unset.
class NormLayerImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  // The output where a Linear consumes it (the pre-norm blocks' norm1 and norm2). Under autocast a
  // layer that can write autocast's dtype itself returns it in that dtype: the bits the Linear's
  // own cast would make, without that cast's pass over memory forward and backward (fused DyT on
  // CUDA; see dyt_fused's out_dtype). Every other layer returns forward(x).
  virtual torch::Tensor forward_to_linear(const torch::Tensor& x) { return forward(x); }
  virtual std::string describe() const = 0;
  using CaptureFn = std::function<void(const torch::Tensor& input, const torch::Tensor& normalized)>;
  CaptureFn capture;
  // `observe`, when set, receives the input only (cheap statistics, e.g. alpha vs 1/std tracking).
  std::function<void(const torch::Tensor& input)> observe;
  // The layer's scalar alpha (DyT, Derf), or NaN.
  virtual double alpha_value() const { return std::nan(""); }

 protected:
  // Feeds the analysis hooks, when set; every forward starts with it.
  void notify(const torch::Tensor& x) {
    if (observe) observe(x);
    if (capture) capture(x, normalize_only(x));
  }
  // The normalized output without the affine part, for analysis only (not on the training path).
  virtual torch::Tensor normalize_only(const torch::Tensor& x) = 0;
};
using NormLayer = std::shared_ptr<NormLayerImpl>;

// Builds a norm layer over `dim` channels (the last axis; make_norm_factory's channels_first
// option puts it at dim 1, NCHW).
using NormFactory = std::function<NormLayer(int64_t dim)>;

struct NormType {
  std::string help;
  // Visits the options this type reads (beyond `type`).
  std::function<void(FieldVisitor&, NormOptions&)> visit;
  std::function<NormLayer(int64_t dim, const NormOptions&, bool channels_first)> build;
};

const Registry<NormType>& norm_registry();

// Validates `opts` (throws std::invalid_argument with the reason) and returns its factory.
NormFactory make_norm_factory(const NormOptions& opts, bool channels_first = false);

}  // namespace dyt
