// wav2vec 2.0 pretraining model (Baevski et al. 2020), with the parameter names of
// transformers' Wav2Vec2ForPreTraining and the objective of fairseq's wav2vec criterion:
//
//   raw audio -> conv feature encoder (GroupNorm after the first conv, or LayerNorm after each
//   conv in "layer_norm" mode) -> feature LayerNorm -> projection -> time masking (spans of
//   mask_length from starts drawn with probability mask_prob; masked frames replaced by a learned
//   embedding) -> positional convolution (weight-normalised, groups) -> Transformer (post-norm
//   for Base, pre-norm for Large) -> project_hid
//   unmasked features -> Gumbel-softmax product quantiser (groups x entries, straight-through)
//   -> project_q   (quantize_targets: false skips the quantiser, as fairseq's option does)
//   loss, per masked frame: -log softmax over {positive, N distractors drawn from the other masked
//   frames of the same utterance} of cosine similarity / logit_temp; plus diversity_weight *
//   (G*V - perplexity) / (G*V) and feature_penalty_weight * mean(features^2). Reported in bits.
//
// Every LayerNorm (feature, encoder, each layer's two, the conv ones in layer_norm mode) comes
// from the norm factory; the GroupNorm of the first conv stays, as in the paper's DyT runs.
#pragma once

#include <random>

#include "models/model.h"
#include "models/transformer.h"

namespace dyt {

struct W2V2Options : ModelOptions {
  std::vector<int64_t> conv_dim{512, 512, 512, 512, 512, 512, 512};
  std::vector<int64_t> conv_kernel{10, 3, 3, 3, 3, 2, 2};
  std::vector<int64_t> conv_stride{5, 2, 2, 2, 2, 2, 2};
  bool conv_bias = false;
  std::string extractor_mode = "group_norm";
  std::string extractor_norm = "layernorm";  // layer_norm mode: the per-conv norms stay LayerNorm, or follow `model`
  std::string feature_norm = "model";        // the feature LayerNorm: follows `model.norm`, or stays layernorm
  double feature_alpha_init = 0.0;           // > 0: alpha0 of the feature norm alone (DyT family)
  double feature_grad_mult = 0.1;
  int64_t embed_dim = 768, depth = 12, num_heads = 12, ffn_dim = 3072;
  bool layer_norm_first = false;
  int64_t pos_conv_kernel = 128, pos_conv_groups = 16;
  double dropout = 0.1, attention_dropout = 0.1, activation_dropout = 0.0, dropout_input = 0.1, dropout_features = 0.1;
  double layerdrop = 0.05;
  int64_t final_dim = 256, quantizer_groups = 2, quantizer_entries = 320, codevector_dim = 0;
  bool quantize_targets = true;  // false: targets are the projected continuous features (fairseq's option)
  double mask_prob = 0.65;
  int64_t mask_length = 10, min_masks = 2;
  bool require_same_masks = true;  // fairseq: every utterance of a batch keeps the batch's fewest masked frames
  int64_t num_negatives = 100;
  double logit_temp = 0.1;
  std::vector<double> gumbel_temp{2.0, 0.5, 0.999995};  // max, min, decay per update
  double diversity_weight = 0.1, feature_penalty_weight = 10.0;
  void visit(FieldVisitor& v) override;
  nlohmann::json interop_config() const override;
  std::unique_ptr<ModelOptions> clone() const override { return std::make_unique<W2V2Options>(*this); }
  int64_t codevectors() const { return codevector_dim > 0 ? codevector_dim : final_dim; }
};

// Frames the conv encoder makes of `samples` audio samples: L <- floor((L - k) / s) + 1 per layer.
int64_t conv_output_length(const W2V2Options& o, int64_t samples);

// fairseq's compute_mask_indices for one utterance of `frames` frames: num = max(min_masks,
// int(mask_prob * frames / mask_length + U[0,1))) span starts drawn without replacement from
// [0, frames - mask_length), each masking mask_length frames (spans may overlap).
std::vector<uint8_t> compute_span_mask(int64_t frames, double mask_prob, int64_t mask_length, int64_t min_masks,
                                       std::mt19937_64& rng);

// For each of `masked` frames, `n` distractor indices in [0, masked) that never equal the frame's own.
torch::Tensor sample_distractors(int64_t masked, int64_t n, const torch::Tensor& uniform_draws);

class GumbelQuantizerImpl : public torch::nn::Module {
 public:
  GumbelQuantizerImpl(int64_t in_dim, int64_t groups, int64_t entries, int64_t codevector_dim);
  struct Output {
    torch::Tensor quantized;        // [..., codevector_dim]
    torch::Tensor prob_perplexity;  // of the mean soft distribution over frames (summed over groups)
    torch::Tensor code_perplexity;  // of the mean hard assignment
  };
  // x [N, in_dim] (frames); `valid` [N] bool selects the frames the perplexities average over.
  Output forward(const torch::Tensor& x, double temperature, const torch::Tensor& valid = {});
  torch::Tensor codevectors;
  Linear weight_proj{nullptr};
  int64_t groups, entries;
};
TORCH_MODULE(GumbelQuantizer);

// Weight-normalised grouped convolution with transformers' parameter names:
// conv.bias, conv.parametrizations.weight.original0 (g, [1, 1, K]) and .original1 (v).
class PosConvImpl : public torch::nn::Module {
 public:
  PosConvImpl(int64_t dim, int64_t kernel, int64_t groups, double dropout);
  torch::Tensor forward(const torch::Tensor& x /* [B, D, T] */);
  torch::Tensor g, v, bias;

 private:
  int64_t kernel_, groups_;
};
TORCH_MODULE(PosConv);

class Wav2Vec2Impl : public Model {
 public:
  explicit Wav2Vec2Impl(const W2V2Options& o);

  struct Output {
    torch::Tensor loss;        // per masked frame (nats), what training minimises
    torch::Tensor loss_sum;    // summed over masked frames, all terms
    int64_t masked = 0;        // number of masked frames (fairseq's sample_size)
    double contrastive_sum = 0, diversity = 0, feature_penalty = 0;
    double accuracy = 0, prob_perplexity = 0, code_perplexity = 0;
    torch::Tensor mask;       // [B, T'] bool: the masked frames, row-major = the order of the rows below
    torch::Tensor negatives;  // [M, N] long: each masked frame's distractors, as rows of that order
  };
  // source [B, T] audio; padding_mask [B, T] true where padded (or undefined). `rng` draws the
  // masks; negatives come from `gen` (default: torch's generator).
  Output forward(const torch::Tensor& source, const torch::Tensor& padding_mask, std::mt19937_64& rng,
                 std::optional<at::Generator> gen = std::nullopt);

  // Conv features [B, T', C] (before the feature LayerNorm) and each utterance's frame count.
  std::pair<torch::Tensor, std::vector<int64_t>> features(const torch::Tensor& source, const torch::Tensor& padding_mask);
  // Transformer output for unmasked input [B, T', D] (e.g. to compare with a reference model).
  torch::Tensor encode(const torch::Tensor& source);

  void set_num_updates(int64_t n);
  double temperature() const { return temperature_; }
  std::string summary() const override;
  int64_t num_layers() const override { return opts.depth + 2; }

  W2V2Options opts;

 private:
  torch::Tensor run_encoder(torch::Tensor x, const torch::Tensor& frame_padding);
  double temperature_;
  // Typed handles on the submodules, registered under transformers' names (wav2vec2.encoder...).
  torch::nn::ModuleList conv_layers_{nullptr}, layers_{nullptr};
  NormLayer feature_norm_, encoder_norm_;
  Linear projection_{nullptr}, project_hid_{nullptr}, project_q_{nullptr};
  PosConv pos_conv_{nullptr};
  GumbelQuantizer quantizer_{nullptr};
  torch::Tensor masked_spec_embed_;
};

}  // namespace dyt
