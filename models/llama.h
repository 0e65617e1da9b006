// A LLaMA-shaped decoder block for the paper's efficiency table (`dyt bench model`): pre-norm,
// causal attention without biases, SwiGLU MLP. Rotary embeddings are left out: they cost the same
// with every norm. Header only; not a trainable LLaMA (no embeddings, no rotary, no cache).
#pragma once

#include <torch/torch.h>

#include "models/norm/norm.h"
#include "models/transformer.h"

namespace dyt {

class LlamaBlockImpl : public torch::nn::Module {
 public:
  LlamaBlockImpl(int64_t dim, int64_t heads, int64_t hidden, const NormFactory& norm) : heads_(heads) {
    attention_norm = register_module("attention_norm", norm(dim));
    wqkv = register_module("wqkv", Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(false)));
    wo = register_module("wo", Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
    ffn_norm = register_module("ffn_norm", norm(dim));
    w13 = register_module("w13", Linear(torch::nn::LinearOptions(dim, 2 * hidden).bias(false)));
    w2 = register_module("w2", Linear(torch::nn::LinearOptions(hidden, dim).bias(false)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
    auto qkv = split_qkv(wqkv(attention_norm->forward_to_linear(x)), heads_);
    torch::Tensor a = at::scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], {}, 0.0, /*is_causal=*/true);
    torch::Tensor h = x + wo(a.transpose(1, 2).reshape({B, N, D}));
    auto gu = w13(ffn_norm->forward_to_linear(h)).chunk(2, -1);
    return h + w2(torch::silu(gu[0]) * gu[1]);
  }
  NormLayer attention_norm, ffn_norm;
  Linear wqkv{nullptr}, wo{nullptr}, w13{nullptr}, w2{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(LlamaBlock);

}  // namespace dyt
