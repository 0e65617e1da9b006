// Transformer building blocks shared by the ViT, MAE and wav2vec 2.0 models, matching timm's
// module and parameter names (blocks.N.norm1, attn.qkv, attn.proj, mlp.fc1, mlp.fc2, ...).
#pragma once

#include <torch/torch.h>

#include "models/norm/norm.h"

namespace dyt {

// Linear whose forward is ATen's linear, as Python's nn.Linear: one GEMM with the bias
// in its epilogue and one fused backward. LibTorch's C++ Linear::forward runs a matmul and then a
// separate bias add for inputs of more than two dimensions (in fp32 under autocast: a cast, an add
// and a reduction more per layer, about 14 % of a ViT-B/16 training step on an H200).
class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& x) { return at::linear(x, weight, bias); }
};
TORCH_MODULE(Linear);

// Stochastic depth per sample (timm DropPath): drops the whole residual branch of a sample with
// probability p during training and scales the kept ones by 1 / (1 - p).
torch::Tensor drop_path(const torch::Tensor& x, double p, bool training);

// q, k and v, each [B, heads, N, D / heads], as views of a qkv projection's output [B, N, 3 D]:
// what timm's reshape, permute and unbind compute, with a backward that writes the three
// gradients into one [B, N, 3, heads, D / heads] buffer, which is the projection's gradient as it
// stands. Autograd's own backward of that chain is a stack of the three (CatArrayBatchedCopy on
// CUDA) and then a permuted copy to make the reshape's gradient contiguous: two passes over
// 3 B N D elements where this makes one (the stack alone took 6.0 ms of a 92 ms ViT-B/16 step
// on an H200, results/reference/gpu_h200/). The gradients are the same values, bit for bit.
std::array<torch::Tensor, 3> split_qkv(const torch::Tensor& qkv, int64_t heads);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t heads, bool qkv_bias);
  // x [B, N, D]; key_padding_mask [B, N] true where padded (optional).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding_mask = {});
  Linear qkv{nullptr}, proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

struct BlockOptions {
  int64_t dim = 768, heads = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double drop_path = 0.0;
  bool pre_norm = true;  // false: post-norm (wav2vec 2.0 Base / BERT): x = norm(x + f(x))
};

// Transformer block: pre-norm  x + attn(norm1(x)), x + mlp(norm2(x));
//                    post-norm norm1(x + attn(x)),  norm2(x + mlp(x)).
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const BlockOptions& o, const NormFactory& norm);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding_mask = {});
  NormLayer norm1, norm2;
  Attention attn{nullptr};
  Mlp mlp{nullptr};
  BlockOptions opts;
};
TORCH_MODULE(Block);

// Conv patch embedding: [B, C, H, W] -> [B, (H/p)*(W/p), D].
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t img_size, int64_t patch, int64_t in_chans, int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d proj{nullptr};
  int64_t img_size, patch, grid, num_patches;
};
TORCH_MODULE(PatchEmbed);

// timm's init for Linear layers: trunc_normal(std .02) weights, zero biases.
void init_linear_timm(torch::nn::Module& m);

// Fixed 2-D sin-cos position embedding (MAE), [grid*grid (+1 if cls), dim].
torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid, bool cls_token);

}  // namespace dyt
