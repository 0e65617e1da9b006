// Writes <out>/vit_<variant>.safetensors holding a randomly initialised ViT's weights (timm
// names), a fixed input ("__input") and our logits ("__logits"), for golden/vit_vs_timm.py.
#include <torch/torch.h>

#include <cstdio>

#include "models/vit.h"
#include "core/io.h"
#include "runner/train/components.h"

using namespace dyt;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  torch::NoGradGuard ng;
  struct Case {
    const char* name;
    const char* norm;
    const char* pool;
  };
  for (const Case c : {Case{"ln", "layernorm", "cls"}, Case{"dyt", "dyt", "cls"}, Case{"dyt_avg", "dyt", "avg"},
                       Case{"ln_avg", "layernorm", "avg"}}) {
    torch::manual_seed(42);
    ViTOptions o;
    o.img_size = 32, o.patch_size = 8, o.in_chans = 3, o.num_classes = 7, o.embed_dim = 48, o.depth = 3, o.num_heads = 4;
    o.norm.type = c.norm;
    o.global_pool = c.pool;
    auto m = std::make_shared<ViTImpl>(o);
    m->eval();
    // Perturb every parameter so norms' affine parts and DyT's alpha are not at their init.
    for (auto& p : m->parameters()) p.add_(0.05 * torch::randn_like(p));
    torch::Tensor x = torch::randn({4, 3, 32, 32});
    torch::Tensor logits = m->forward(x);
    auto tensors = state_dict(*m);
    tensors.push_back({"__input", x});
    tensors.push_back({"__logits", logits});
    write_safetensors(std::string(argv[1]) + "/vit_" + c.name + ".safetensors", tensors,
                      {{"img_size", "32"}, {"patch_size", "8"}, {"embed_dim", "48"}, {"depth", "3"}, {"num_heads", "4"},
                       {"num_classes", "7"}, {"norm", c.norm}, {"global_pool", c.pool}});
  }
  std::printf("wrote 4 golden files to %s\n", argv[1]);
  return 0;
}
