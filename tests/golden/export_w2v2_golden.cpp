// Writes, for golden/w2v2_vs_transformers.py, small wav2vec 2.0s' weights (transformers' names):
//  w2v2_base/large.safetensors: an input waveform ("__input") and our Transformer output for it
//    ("__hidden", eval mode, no masking);
//  w2v2_loss.safetensors: the Base layout's contrastive loss on a masked batch ("__loss", summed
//    over masked frames), the masks and distractors it drew ("__mask", "__negatives") and the
//    gradient of that loss for every parameter ("__grad.<name>"). Eval mode (no dropout, hard codes),
//    no diversity loss or feature penalty and a full-gradient conv encoder: what transformers'
//    Wav2Vec2ForPreTraining computes in eval mode.
#include <torch/torch.h>

#include <cstdio>

#include "models/wav2vec2.h"
#include "core/io.h"
#include "runner/train/components.h"

using namespace dyt;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  torch::NoGradGuard ng;
  for (const bool large : {false, true}) {
    torch::manual_seed(5);
    W2V2Options o;
    o.conv_dim = std::vector<int64_t>(7, 32);
    o.embed_dim = 48, o.depth = 2, o.num_heads = 4, o.ffn_dim = 96, o.pos_conv_kernel = 16, o.pos_conv_groups = 4;
    o.final_dim = 16, o.quantizer_entries = 8, o.norm.eps = 1e-5;
    if (large) o.extractor_mode = "layer_norm", o.layer_norm_first = true;
    auto m = std::make_shared<Wav2Vec2Impl>(o);
    m->eval();
    for (auto& p : m->parameters()) p.add_(0.05 * torch::randn_like(p));
    torch::Tensor x = torch::randn({2, 6000});
    auto tensors = state_dict(*m);
    tensors.push_back({"__input", x});
    tensors.push_back({"__hidden", m->encode(x)});
    write_safetensors(std::string(argv[1]) + (large ? "/w2v2_large.safetensors" : "/w2v2_base.safetensors"), tensors,
                      {{"hidden", "48"}, {"layers", "2"}, {"heads", "4"}, {"ffn", "96"}, {"conv_dim", "32"},
                       {"pos_kernel", "16"}, {"pos_groups", "4"}, {"final_dim", "16"}, {"entries", "8"},
                       {"large", large ? "1" : "0"}});
  }
  {
    torch::manual_seed(6);
    W2V2Options o;
    o.conv_dim = std::vector<int64_t>(7, 32);
    o.embed_dim = 48, o.depth = 2, o.num_heads = 4, o.ffn_dim = 96, o.pos_conv_kernel = 16, o.pos_conv_groups = 4;
    o.final_dim = 16, o.quantizer_entries = 8, o.norm.eps = 1e-5, o.num_negatives = 10;
    o.mask_prob = 0.3, o.mask_length = 5, o.diversity_weight = 0.0, o.feature_penalty_weight = 0.0;
    o.feature_grad_mult = 1.0;
    auto m = std::make_shared<Wav2Vec2Impl>(o);
    m->eval();
    torch::Tensor x = torch::randn({2, 16000});
    std::mt19937_64 rng(3);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
    torch::NoGradGuard off;
    auto tensors = state_dict(*m);
    {
      torch::AutoGradMode on(true);
      auto out = m->forward(x, {}, rng, gen);
      out.loss_sum.backward();
      tensors.push_back({"__loss", out.loss_sum.detach().reshape({1})});
      tensors.push_back({"__mask", out.mask.to(torch::kUInt8)});
      tensors.push_back({"__negatives", out.negatives});
    }
    for (const auto& item : m->named_parameters(true))
      if (item.value().grad().defined()) tensors.push_back({"__grad." + item.key(), item.value().grad()});
    tensors.push_back({"__input", x});
    write_safetensors(std::string(argv[1]) + "/w2v2_loss.safetensors", tensors,
                      {{"hidden", "48"}, {"layers", "2"}, {"heads", "4"}, {"ffn", "96"}, {"conv_dim", "32"},
                       {"pos_kernel", "16"}, {"pos_groups", "4"}, {"final_dim", "16"}, {"entries", "8"},
                       {"large", "0"}, {"negatives", "10"}});
  }
  std::printf("wrote 3 golden files to %s\n", argv[1]);
  return 0;
}
