// Transformer blocks shared by ViT, MAE and wav2vec 2.0 (models/transformer.h).
#include "models/transformer.h"

#include <cmath>

#include "models/model.h"

namespace dyt {

using torch::Tensor;
namespace F = torch::nn::functional;

Tensor drop_path(const Tensor& x, double p, bool training) {
  if (p <= 0.0 || !training) return x;
  const double keep = 1.0 - p;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  Tensor mask = torch::empty(shape, x.options()).bernoulli_(keep);
  return x * mask.div_(keep);
}

namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class SplitQkv : public torch::autograd::Function<SplitQkv> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& qkv, int64_t heads) {
    TORCH_CHECK(qkv.dim() == 3 && qkv.size(2) % (3 * heads) == 0, "split_qkv: expected [B, N, 3 D] with ", heads,
                " heads dividing D, got shape ", qkv.sizes());
    const int64_t B = qkv.size(0), N = qkv.size(1), Dh = qkv.size(2) / (3 * heads);
    ctx->saved_data["shape"] = std::vector<int64_t>{B, N, heads, Dh};
    auto parts = qkv.reshape({B, N, 3, heads, Dh}).permute({2, 0, 3, 1, 4}).unbind(0);
    return {parts[0], parts[1], parts[2]};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto shape = ctx->saved_data["shape"].toIntVector();
    const int64_t B = shape[0], N = shape[1], H = shape[2], Dh = shape[3];
    const Tensor* any = nullptr;
    for (const Tensor& g : grads)
      if (g.defined()) any = &g;
    if (!any) return {Tensor(), Tensor()};
    Tensor out = torch::empty({B, N, 3, H, Dh}, any->options());
    for (int i = 0; i < 3; ++i) {
      Tensor slot = out.select(2, i).transpose(1, 2);  // [B, H, N, Dh] view
      if (grads[i].defined()) slot.copy_(grads[i]);
      else slot.zero_();
    }
    return {out.view({B, N, 3 * H * Dh}), Tensor()};
  }
};
}  // namespace

std::array<Tensor, 3> split_qkv(const Tensor& qkv, int64_t heads) {
  auto parts = SplitQkv::apply(qkv, heads);
  return {parts[0], parts[1], parts[2]};
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t h, bool qkv_bias) : heads(h) {
  TORCH_CHECK(dim % h == 0, "attention: heads (", h, ") must divide the width (", dim, ")");
  qkv = register_module("qkv", Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(qkv_bias)));
  proj = register_module("proj", Linear(dim, dim));
}

Tensor AttentionImpl::forward(const Tensor& x, const Tensor& key_padding_mask) {
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  auto parts = split_qkv(qkv(x), heads);
  std::optional<Tensor> mask;
  if (key_padding_mask.defined())  // [B, 1, 1, N], true = attend
    mask = key_padding_mask.logical_not().view({B, 1, 1, N});
  Tensor out = at::scaled_dot_product_attention(parts[0], parts[1], parts[2], mask);
  return proj(out.transpose(1, 2).reshape({B, N, D}));
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", Linear(dim, hidden));
  fc2 = register_module("fc2", Linear(hidden, dim));
}

Tensor MlpImpl::forward(const Tensor& x) { return fc2(torch::gelu(fc1(x))); }

BlockImpl::BlockImpl(const BlockOptions& o, const NormFactory& norm) : opts(o) {
  norm1 = register_module("norm1", norm(o.dim));
  attn = register_module("attn", Attention(o.dim, o.heads, o.qkv_bias));
  norm2 = register_module("norm2", norm(o.dim));
  mlp = register_module("mlp", Mlp(o.dim, static_cast<int64_t>(o.dim * o.mlp_ratio)));
}

Tensor BlockImpl::forward(const Tensor& x_in, const Tensor& key_padding_mask) {
  const bool train = is_training();
  if (opts.pre_norm) {
    Tensor x =
        x_in + drop_path(attn->forward(norm1->forward_to_linear(x_in), key_padding_mask), opts.drop_path, train);
    return x + drop_path(mlp->forward(norm2->forward_to_linear(x)), opts.drop_path, train);
  }
  Tensor x = norm1->forward(x_in + drop_path(attn->forward(x_in, key_padding_mask), opts.drop_path, train));
  return norm2->forward(x + drop_path(mlp->forward(x), opts.drop_path, train));
}

PatchEmbedImpl::PatchEmbedImpl(int64_t img, int64_t p, int64_t in_chans, int64_t dim)
    : img_size(img), patch(p), grid(img / p), num_patches((img / p) * (img / p)) {
  TORCH_CHECK(img % p == 0, "patch embedding: patch size ", p, " must divide the image size ", img);
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, dim, p).stride(p)));
}

Tensor PatchEmbedImpl::forward(const Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(2) == img_size && x.size(3) == img_size, "patch embedding: expected images of ",
              img_size, "x", img_size, ", got shape ", x.sizes());
  return proj(x).flatten(2).transpose(1, 2);
}

void init_linear_timm(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& child : m.modules(/*include_self=*/false)) {  // self is not in a shared_ptr during construction
    if (auto* lin = child->as<torch::nn::Linear>()) {
      trunc_normal_(lin->weight, 0.02);
      if (lin->bias.defined()) lin->bias.zero_();
    }
  }
}

// MAE's get_2d_sincos_pos_embed: half the channels encode the row (h), half the column (w),
// each as [sin(pos * omega), cos(pos * omega)] with omega = 1 / 10000^(k / (D/4)).
Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid, bool cls_token) {
  TORCH_CHECK(dim % 4 == 0, "sin-cos position embedding needs a width divisible by 4, got ", dim);
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  Tensor omega = torch::arange(dim / 4, opts) / (dim / 4.0);
  omega = 1.0 / torch::pow(10000.0, omega);
  Tensor coords = torch::arange(grid, opts);
  auto mesh = torch::meshgrid({coords, coords}, "xy");  // mesh[0] varies along w, as np.meshgrid(w, h)
  auto encode = [&](const Tensor& pos) {
    Tensor out = torch::outer(pos.reshape(-1), omega);
    return torch::cat({torch::sin(out), torch::cos(out)}, 1);
  };
  Tensor emb = torch::cat({encode(mesh[0]), encode(mesh[1])}, 1);
  if (cls_token) emb = torch::cat({torch::zeros({1, dim}, opts), emb}, 0);
  return emb.to(torch::kFloat);
}

}  // namespace dyt
