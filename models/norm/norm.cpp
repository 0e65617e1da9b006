// The norm registry and layers: LayerNorm, RMSNorm, the DyT family, Derf, DyISRU (models/norm/norm.h).
#include "models/norm/norm.h"

#include <ATen/autocast_mode.h>

#include <cmath>

#include "models/norm/dyt_op.h"

namespace dyt {
namespace {

using torch::Tensor;

// Moves the channel axis (dim 1) last and back, for the channels-first variants of norms whose
// ATen kernels only normalise trailing dimensions.
Tensor channels_last_view(const Tensor& x) { return x.movedim(1, -1); }
Tensor channels_first_view(const Tensor& x) { return x.movedim(-1, 1); }

// Shapes a per-channel parameter to broadcast against x.
Tensor per_channel(const Tensor& p, const Tensor& x, bool channels_first) {
  if (!channels_first) return p;
  std::vector<int64_t> shape(x.dim() - 1, 1);
  shape[0] = p.size(0);
  return p.view(shape);
}

class LayerNormLayer : public NormLayerImpl {
 public:
  LayerNormLayer(int64_t dim, const NormOptions& o, bool cf) : dim_(dim), eps_(o.eps), cf_(cf) {
    if (o.elementwise_affine) {
      weight = register_parameter("weight", torch::ones({dim}));
      bias = register_parameter("bias", torch::zeros({dim}));
    }
  }
  Tensor forward(const Tensor& x) override {
    notify(x);
    if (!cf_) return at::layer_norm(x, {dim_}, weight, bias, eps_);
    return channels_first_view(at::layer_norm(channels_last_view(x), {dim_}, weight, bias, eps_));
  }
  Tensor normalize_only(const Tensor& x) override {
    Tensor v = cf_ ? channels_last_view(x) : x;
    Tensor y = at::layer_norm(v, {dim_}, {}, {}, eps_);
    return cf_ ? channels_first_view(y) : y;
  }
  std::string describe() const override {
    return "LayerNorm(" + std::to_string(dim_) + ", eps=" + c10::str(eps_) + (weight.defined() ? "" : ", no affine") + ")";
  }
  Tensor weight, bias;

 private:
  int64_t dim_;
  double eps_;
  bool cf_;
};

class RMSNormLayer : public NormLayerImpl {
 public:
  RMSNormLayer(int64_t dim, const NormOptions& o, bool cf) : dim_(dim), eps_(o.eps), cf_(cf) {
    if (o.elementwise_affine) weight = register_parameter("weight", torch::ones({dim}));
  }
  Tensor forward(const Tensor& x) override {
    notify(x);
    if (!cf_) return at::rms_norm(x, {dim_}, weight, eps_);
    return channels_first_view(at::rms_norm(channels_last_view(x), {dim_}, weight, eps_));
  }
  Tensor normalize_only(const Tensor& x) override {
    Tensor v = cf_ ? channels_last_view(x) : x;
    Tensor y = at::rms_norm(v, {dim_}, {}, eps_);
    return cf_ ? channels_first_view(y) : y;
  }
  std::string describe() const override {
    return "RMSNorm(" + std::to_string(dim_) + ", eps=" + c10::str(eps_) + ")";
  }
  Tensor weight;

 private:
  int64_t dim_;
  double eps_;
  bool cf_;
};

// alpha is a parameter of shape [1] when learnable, else a buffer holding alpha_init (the paper's
// "alpha removed" ablation is learnable_alpha: false with alpha_init: 1).
Tensor make_alpha(torch::nn::Module& m, const NormOptions& o) {
  Tensor a = torch::full({1}, o.alpha_init);
  return o.learnable_alpha ? m.register_parameter("alpha", a) : m.register_buffer("alpha", a);
}

// Element-wise replacements of a norm: y = weight * f(x) + bias, f = normalize_only (per-channel
// weight and bias on the channel axis).
class ElementwiseLayer : public NormLayerImpl {
 public:
  Tensor forward(const Tensor& x) override {
    notify(x);
    return affine(normalize_only(x), x);
  }
  Tensor weight, bias;

 protected:
  ElementwiseLayer(int64_t dim, bool cf) : dim_(dim), cf_(cf) {}
  void register_affine() {
    weight = register_parameter("weight", torch::ones({dim_}));
    bias = register_parameter("bias", torch::zeros({dim_}));
  }
  Tensor affine(const Tensor& f, const Tensor& x) const {
    return f * per_channel(weight, x, cf_) + per_channel(bias, x, cf_);
  }
  int64_t dim_;
  bool cf_;
};

class DyTLayer : public ElementwiseLayer {
 public:
  DyTLayer(int64_t dim, const NormOptions& o, bool cf) : ElementwiseLayer(dim, cf), squash_(o.squash), impl_(o.impl) {
    alpha = make_alpha(*this, o);
    register_affine();
  }
  Tensor forward(const Tensor& x) override { return run(x, std::nullopt); }
  Tensor forward_to_linear(const Tensor& x) override {
    const auto dev = x.device().type();
    if (squash_ != "tanh" || x.scalar_type() != torch::kFloat || !at::autocast::is_autocast_enabled(dev))
      return forward(x);
    const auto out = at::autocast::get_autocast_dtype(dev);
    return out == torch::kBFloat16 || out == torch::kHalf ? run(x, out) : forward(x);
  }
  Tensor normalize_only(const Tensor& x) override {
    Tensor z = alpha * x;
    if (squash_ == "tanh") return torch::tanh(z);
    if (squash_ == "hardtanh") return torch::hardtanh(z);
    if (squash_ == "sigmoid") return torch::sigmoid(z);
    return z;  // identity
  }
  double alpha_value() const override { return alpha.item<double>(); }
  std::string describe() const override {
    return "DyT(" + std::to_string(dim_) + ", squash=" + squash_ + ", alpha=" + c10::str(alpha.item<float>()) +
           (alpha.requires_grad() ? "" : " fixed") + ", impl=" + impl_ + ")";
  }
  Tensor alpha;

 private:
  // out: the output dtype for tanh (dyt_fused / dyt_aten's out_dtype); unset, x's.
  Tensor run(const Tensor& x, std::optional<torch::ScalarType> out) {
    notify(x);
    if (use_fused(x)) return dyt_fused(x, alpha, weight, bias, cf_, out);
    if (squash_ == "tanh") return dyt_aten(x, alpha, weight, bias, cf_, out);
    return affine(normalize_only(x), x);
  }
  bool use_fused(const Tensor& x) const {
    if (squash_ != "tanh" || impl_ == "aten") return false;
    std::string why;
    bool ok = dyt_fused_available(x.device(), x.scalar_type(), &why);
    if (!ok && impl_ == "fused")
      throw std::runtime_error("norm.impl: fused requested but unavailable: " + why +
                               "; set model.norm.impl to auto or aten");
    return ok;
  }
  std::string squash_, impl_;
};

class DerfLayer : public ElementwiseLayer {
 public:
  DerfLayer(int64_t dim, const NormOptions& o, bool cf) : ElementwiseLayer(dim, cf) {
    alpha = make_alpha(*this, o);
    shift = register_parameter("shift", torch::full({1}, o.shift_init));
    register_affine();
  }
  Tensor normalize_only(const Tensor& x) override { return torch::erf(alpha * x + shift); }
  double alpha_value() const override { return alpha.item<double>(); }
  std::string describe() const override { return "Derf(" + std::to_string(dim_) + ")"; }
  Tensor alpha, shift;
};

class DyISRULayer : public ElementwiseLayer {
 public:
  DyISRULayer(int64_t dim, const NormOptions&, bool cf) : ElementwiseLayer(dim, cf) {
    r = register_parameter("r", torch::full({1}, static_cast<double>(dim)));
    register_affine();
  }
  Tensor normalize_only(const Tensor& x) override {
    // r is kept positive through abs so that a step past zero cannot produce NaN.
    return x * std::sqrt(static_cast<double>(dim_)) * torch::rsqrt(x * x + r.abs() + 1e-6);
  }
  std::string describe() const override { return "DyISRU(" + std::to_string(dim_) + ")"; }
  Tensor r;
};

class IdentityLayer : public NormLayerImpl {
 public:
  Tensor forward(const Tensor& x) override {
    notify(x);
    return x;
  }
  Tensor normalize_only(const Tensor& x) override { return x; }
  std::string describe() const override { return "Identity"; }
};

void visit_affine_eps(FieldVisitor& v, NormOptions& o) {
  v.field("eps", o.eps, doc("added to the variance before the square root").gt(0));
  v.field("elementwise_affine", o.elementwise_affine, doc("learn a per-channel weight (and bias for LayerNorm)"));
}

void visit_alpha(FieldVisitor& v, NormOptions& o) {
  v.field("alpha_init", o.alpha_init, doc("initial alpha (the paper's alpha0)"));
  v.field("learnable_alpha", o.learnable_alpha,
          doc("learn alpha; false keeps it fixed at alpha_init (alpha_init: 1 removes it)"));
}

Registry<NormType> build_norm_registry() {
  Registry<NormType> r("norm");
  r.add("layernorm", {"LayerNorm: normalise each token over its channels, then affine",
                      visit_affine_eps,
                      [](int64_t d, const NormOptions& o, bool cf) -> NormLayer {
                        return std::make_shared<LayerNormLayer>(d, o, cf);
                      }});
  r.add("rmsnorm", {"RMSNorm: divide each token by its root mean square, then scale", visit_affine_eps,
                    [](int64_t d, const NormOptions& o, bool cf) -> NormLayer {
                      return std::make_shared<RMSNormLayer>(d, o, cf);
                    }});
  r.add("dyt", {"Dynamic Tanh: weight * squash(alpha * x) + bias, no statistics",
                [](FieldVisitor& v, NormOptions& o) {
                  visit_alpha(v, o);
                  v.field("squash", o.squash,
                          doc("squashing function (the paper's Table 7 ablation)")
                              .one_of({"tanh", "hardtanh", "sigmoid", "identity"}));
                  v.field("impl", o.impl,
                          doc("auto: fused kernel where built for the device, else aten; fused: require it")
                              .one_of({"auto", "aten", "fused"}));
                  v.check(o.impl != "fused" || o.squash == "tanh", "impl",
                          "the fused kernel implements squash: tanh only; use impl: auto or aten with squash: " +
                              o.squash);
                },
                [](int64_t d, const NormOptions& o, bool cf) -> NormLayer {
                  return std::make_shared<DyTLayer>(d, o, cf);
                }});
  r.add("derf", {"Dynamic erf: weight * erf(alpha * x + shift) + bias (arXiv 2512.10938)",
                 [](FieldVisitor& v, NormOptions& o) {
                   visit_alpha(v, o);
                   v.field("shift_init", o.shift_init, doc("initial shift s inside erf"));
                 },
                 [](int64_t d, const NormOptions& o, bool cf) -> NormLayer {
                   return std::make_shared<DerfLayer>(d, o, cf);
                 }});
  r.add("dyisru", {"DyISRU: weight * sqrt(C) * x / sqrt(x^2 + r) + bias, r learnable (arXiv 2503.21708)",
                   [](FieldVisitor&, NormOptions&) {},
                   [](int64_t d, const NormOptions& o, bool cf) -> NormLayer {
                     return std::make_shared<DyISRULayer>(d, o, cf);
                   }});
  r.add("identity", {"no normalization: y = x", [](FieldVisitor&, NormOptions&) {},
                     [](int64_t, const NormOptions&, bool) -> NormLayer { return std::make_shared<IdentityLayer>(); }});
  return r;
}

}  // namespace

const Registry<NormType>& norm_registry() {
  static const Registry<NormType> registry = build_norm_registry();
  return registry;
}

void NormOptions::visit(FieldVisitor& v) {
  v.field("type", type, doc("normalization layer used everywhere in the model").one_of(norm_registry().names()));
  for (const auto& entry : norm_registry().entries()) {  // (structured bindings cannot be captured in C++17)
    const auto& t = entry.second;
    v.group(entry.first == type, [&] { t.visit(v, *this); });
  }
}

NormFactory make_norm_factory(const NormOptions& opts, bool channels_first) {
  const NormType& t = norm_registry().get(opts.type);  // throws with the known names
  return [&t, opts, channels_first](int64_t dim) { return t.build(dim, opts, channels_first); };
}

}  // namespace dyt
