// Writes <out>/w2v2.safetensors: a small wav2vec 2.0's weights (transformers' names), an input
// waveform ("__input") and our Transformer output for it ("__hidden", eval mode, no masking),
// for golden/w2v2_vs_transformers.py.
#include <torch/torch.h>

#include <cstdio>

#include "models/wav2vec2.h"
#include "runner/io.h"
#include "runner/train.h"

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
  std::printf("wrote 2 golden files to %s\n", argv[1]);
  return 0;
}
