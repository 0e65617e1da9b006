// Writes, for golden/mae_train_vs_transformers.py, a small MAE's (LN and DyT) initial weights,
// images and masking noise, and what our model and optimizer make of them: the loss of 6 AdamW
// updates (MAE's pretraining optimizer: betas (0.9, 0.95), weight decay 0.05 except on 1-D
// parameters and biases, norm_pix_loss, mask ratio 0.75), each on its own batch and noise, and the
// weights after them. transformers' ViTMAEForPreTraining takes the same noise (it masks by argsort
// of it, as ours does), so the two trajectories must agree.
#include <torch/torch.h>

#include <cstdio>

#include "core/io.h"
#include "models/mae.h"
#include "runner/train/components.h"

using namespace dyt;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  at::set_num_threads(1);
  for (const std::string norm : {"layernorm", "dyt"}) {
    torch::manual_seed(11);
    MAEOptions o;
    o.img_size = 16, o.patch_size = 4, o.in_chans = 3, o.embed_dim = 32, o.depth = 2, o.num_heads = 4;
    o.decoder_embed_dim = 16, o.decoder_depth = 1, o.decoder_num_heads = 4, o.mlp_ratio = 4.0;
    o.norm_pix_loss = true, o.mask_ratio = 0.75;
    o.norm.type = norm, o.norm.eps = 1e-6;
    auto m = std::make_shared<MAEImpl>(o);
    m->train();
    std::vector<NamedTensor> out;
    for (auto& t : state_dict(*m)) out.push_back({"init." + t.name, t.tensor.clone()});
    OptimOptions oo;
    oo.name = "adamw", oo.betas = {0.9, 0.95}, oo.eps = 1e-8, oo.weight_decay = 0.05;
    Optimizer opt(oo, make_param_groups(*m, oo.weight_decay, 1.0));
    const int64_t steps = 6, N = 4, L = (16 / 4) * (16 / 4);
    std::vector<float> losses;
    for (int64_t s = 0; s < steps; ++s) {
      torch::Tensor x = torch::randn({N, 3, 16, 16});
      torch::Tensor noise = torch::rand({N, L});
      out.push_back({"images." + std::to_string(s), x});
      out.push_back({"noise." + std::to_string(s), noise});
      torch::Tensor loss = m->forward(x, o.mask_ratio, noise).loss;
      losses.push_back(loss.item<float>());
      loss.backward();
      opt.step(1e-3);
      opt.zero_grad();
    }
    out.push_back({"losses", torch::tensor(losses)});
    for (auto& t : state_dict(*m)) out.push_back({"final." + t.name, t.tensor.clone()});
    const std::string path = std::string(argv[1]) + "/mae_" + norm + ".safetensors";
    write_safetensors(path, out,
                      {{"norm", norm}, {"img_size", "16"}, {"patch_size", "4"}, {"embed_dim", "32"}, {"depth", "2"},
                       {"heads", "4"}, {"decoder_dim", "16"}, {"decoder_depth", "1"}, {"decoder_heads", "4"},
                       {"lr", "1e-3"}, {"steps", std::to_string(steps)}});
    std::printf("wrote %s\n", path.c_str());
  }
  return 0;
}
