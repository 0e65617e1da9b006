// wav2vec 2.0 pretraining model: conv features, quantiser, Transformer, contrastive loss (models/wav2vec2.h).
#include "models/wav2vec2.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

namespace dyt {

nlohmann::json W2V2Options::interop_config() const {
  // transformers' Wav2Vec2Config; the weights use transformers' Wav2Vec2ForPreTraining names, so a
  // LayerNorm model loads with load_state_dict(strict=True) (tests/golden/w2v2_vs_transformers.py).
  const int64_t cv = codevector_dim > 0 ? codevector_dim : final_dim;
  return {{"architectures", {"Wav2Vec2ForPreTraining"}},
          {"model_type", "wav2vec2"},
          {"conv_dim", conv_dim},
          {"conv_kernel", conv_kernel},
          {"conv_stride", conv_stride},
          {"conv_bias", conv_bias},
          {"feat_extract_norm", extractor_mode == "group_norm" ? "group" : "layer"},
          {"do_stable_layer_norm", layer_norm_first},
          {"hidden_size", embed_dim},
          {"num_hidden_layers", depth},
          {"num_attention_heads", num_heads},
          {"intermediate_size", ffn_dim},
          {"num_conv_pos_embeddings", pos_conv_kernel},
          {"num_conv_pos_embedding_groups", pos_conv_groups},
          {"codevector_dim", cv},
          {"proj_codevector_dim", final_dim},
          {"num_codevectors_per_group", quantizer_entries},
          {"num_codevector_groups", quantizer_groups},
          {"num_negatives", num_negatives},
          {"contrastive_logits_temperature", logit_temp},
          {"diversity_loss_weight", diversity_weight},
          {"mask_time_prob", mask_prob},
          {"mask_time_length", mask_length},
          {"mask_time_min_masks", min_masks},
          {"hidden_dropout", dropout},
          {"attention_dropout", attention_dropout},
          {"activation_dropout", activation_dropout},
          {"feat_proj_dropout", dropout_input},
          {"layerdrop", layerdrop},
          {"layer_norm_eps", norm.eps},
          {"weights_layout", "transformers' Wav2Vec2ForPreTraining names"},
          {"dyt_norm", {{"type", norm.type}, {"eps", norm.eps}, {"alpha_init", norm.alpha_init}, {"squash", norm.squash}, {"learnable_alpha", norm.learnable_alpha}}}};
}

using torch::Tensor;

void W2V2Options::visit(FieldVisitor& v) {
  v.field("conv_dim", conv_dim, doc("feature encoder: channels of each conv layer").gt(0).required());
  v.field("conv_kernel", conv_kernel, doc("feature encoder: kernel of each conv layer").gt(0).required());
  v.field("conv_stride", conv_stride, doc("feature encoder: stride of each conv layer").gt(0).required());
  v.field("conv_bias", conv_bias, doc("bias in the feature encoder's convs"));
  v.field("extractor_mode", extractor_mode,
          doc("group_norm: GroupNorm after the first conv (Base); layer_norm: a norm after every conv (Large)")
              .one_of({"group_norm", "layer_norm"}));
  v.field("extractor_norm", extractor_norm,
          doc("layer_norm mode: layernorm keeps the per-conv norms LayerNorm whatever model.norm is (as Base keeps "
              "its GroupNorm; replaced by DyT, a conv stack with biases makes all frames alike and the quantiser "
              "collapses); model: they follow model.norm")
              .one_of({"layernorm", "model"}));
  v.field("feature_norm", feature_norm,
          doc("the norm on the conv features (input of the targets and the Transformer): model follows "
              "model.norm (the paper replaces it); layernorm keeps it LayerNorm (a diagnostic)")
              .one_of({"model", "layernorm"}));
  v.field("feature_alpha_init", feature_alpha_init,
          doc("alpha0 of a DyT-family norm on the conv features alone; 0 = model.norm.alpha_init (the paper's LLaMA "
              "recipe gives attention and other norms their own alpha0; the feature norm sees inputs of std ~0.3)")
              .ge(0));
  v.field("feature_grad_mult", feature_grad_mult, doc("scale of the feature encoder's gradient (fairseq: 0.1)").ge(0));
  v.field("embed_dim", embed_dim, doc("Transformer width").gt(0));
  v.field("depth", depth, doc("Transformer layers").gt(0));
  v.field("num_heads", num_heads, doc("attention heads; must divide embed_dim").gt(0));
  v.field("ffn_dim", ffn_dim, doc("feed-forward width").gt(0));
  v.field("layer_norm_first", layer_norm_first, doc("pre-norm layers (Large); false: post-norm (Base)"));
  v.field("pos_conv_kernel", pos_conv_kernel, doc("positional convolution kernel").gt(0));
  v.field("pos_conv_groups", pos_conv_groups, doc("positional convolution groups; must divide embed_dim").gt(0));
  v.field("dropout", dropout, doc("dropout in the Transformer").ge(0).lt(1));
  v.field("attention_dropout", attention_dropout, doc("dropout on attention weights").ge(0).lt(1));
  v.field("activation_dropout", activation_dropout, doc("dropout after the feed-forward activation").ge(0).lt(1));
  v.field("dropout_input", dropout_input, doc("dropout on the projected features").ge(0).lt(1));
  v.field("dropout_features", dropout_features, doc("dropout on the features fed to the quantiser").ge(0).lt(1));
  v.field("layerdrop", layerdrop, doc("probability of skipping a Transformer layer in training").ge(0).lt(1));
  v.field("final_dim", final_dim, doc("dimension of the contrastive space").gt(0));
  v.field("quantizer_groups", quantizer_groups, doc("codebooks (G)").gt(0));
  v.field("quantizer_entries", quantizer_entries, doc("entries per codebook (V)").gt(1));
  v.field("codevector_dim", codevector_dim, doc("quantised vector size; 0 = final_dim").ge(0));
  v.field("quantize_targets", quantize_targets,
          doc("true: targets are Gumbel-quantised features (the paper's); false: the features themselves, "
              "projected (fairseq's quantize_targets: false; no quantiser, no diversity loss)"));
  v.field("mask_prob", mask_prob, doc("probability of a frame starting a masked span").ge(0).lt(1));
  v.field("mask_length", mask_length, doc("masked span length in frames").gt(0));
  v.field("min_masks", min_masks, doc("minimum masked spans per utterance").ge(1));
  v.field("require_same_masks", require_same_masks,
          doc("fairseq's require_same_masks: utterances with more masked frames than the batch's fewest keep a random "
              "subset of that size, so every utterance has as many"));
  v.field("num_negatives", num_negatives, doc("distractors per masked frame").gt(0));
  v.field("logit_temp", logit_temp, doc("temperature of the cosine-similarity logits").gt(0));
  v.field("gumbel_temp", gumbel_temp, doc("Gumbel softmax temperature: [max, min, decay per update]").gt(0));
  v.field("diversity_weight", diversity_weight, doc("weight of the codebook diversity loss").ge(0));
  v.field("feature_penalty_weight", feature_penalty_weight, doc("weight of the feature L2 penalty").ge(0));
  v.check(conv_dim.size() == conv_kernel.size() && conv_kernel.size() == conv_stride.size(), "conv_dim",
          fmt::format("conv_dim, conv_kernel and conv_stride need one entry per layer (have {}, {}, {})", conv_dim.size(),
                      conv_kernel.size(), conv_stride.size()));
  v.check(num_heads <= 0 || embed_dim % num_heads == 0, "num_heads",
          fmt::format("num_heads {} does not divide embed_dim {}", num_heads, embed_dim));
  v.check(pos_conv_groups <= 0 || embed_dim % pos_conv_groups == 0, "pos_conv_groups",
          fmt::format("pos_conv_groups {} does not divide embed_dim {}", pos_conv_groups, embed_dim));
  v.check(quantizer_groups <= 0 || codevectors() % quantizer_groups == 0, "quantizer_groups",
          fmt::format("quantizer_groups {} does not divide the codevector size {}", quantizer_groups, codevectors()));
  v.check(gumbel_temp.size() == 3 && gumbel_temp[0] >= gumbel_temp[1] && gumbel_temp[2] <= 1, "gumbel_temp",
          "give [max, min, decay] with max >= min and decay <= 1, e.g. [2.0, 0.5, 0.999995]");
  v.section("norm", "normalization layer (feature LayerNorm, Transformer norms; the first conv's GroupNorm stays)",
            [&] { norm.visit(v); });
}

int64_t conv_output_length(const W2V2Options& o, int64_t samples) {
  int64_t L = samples;
  for (size_t i = 0; i < o.conv_kernel.size(); ++i) L = L < o.conv_kernel[i] ? 0 : (L - o.conv_kernel[i]) / o.conv_stride[i] + 1;
  return L;
}

std::vector<uint8_t> compute_span_mask(int64_t frames, double mask_prob, int64_t mask_length, int64_t min_masks,
                                       std::mt19937_64& rng) {
  std::vector<uint8_t> mask(std::max<int64_t>(frames, 0), 0);
  const int64_t positions = frames - mask_length;  // fairseq: starts in [0, frames - mask_length)
  if (positions <= 0) return mask;
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  int64_t num = static_cast<int64_t>(mask_prob * static_cast<double>(frames) / static_cast<double>(mask_length) + u);
  num = std::min(std::max(num, min_masks), positions);
  // Starts without replacement: a partial Fisher-Yates over the positions.
  std::vector<int64_t> pos(positions);
  for (int64_t i = 0; i < positions; ++i) pos[i] = i;
  for (int64_t i = 0; i < num; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng() % static_cast<uint64_t>(positions - i));
    std::swap(pos[i], pos[j]);
    for (int64_t t = pos[i]; t < pos[i] + mask_length; ++t) mask[t] = 1;
  }
  return mask;
}

Tensor sample_distractors(int64_t masked, int64_t n, const Tensor& uniform_draws) {
  TORCH_CHECK(masked >= 2, "contrastive loss: an utterance has ", masked,
              " masked frame(s); distractors need at least 2 (longer utterances or a larger mask_prob)");
  // Uniform over the masked - 1 other frames: draw in [0, masked - 1), then skip the frame itself.
  Tensor idx = (uniform_draws * static_cast<double>(masked - 1)).floor().to(torch::kLong).clamp_max(masked - 2);
  Tensor self = torch::arange(masked, idx.options()).unsqueeze(1);
  return idx + (idx >= self).to(torch::kLong);
}

// ---- quantiser ------------------------------------------------------------------------------------------
GumbelQuantizerImpl::GumbelQuantizerImpl(int64_t in_dim, int64_t g, int64_t v, int64_t codevector_dim)
    : groups(g), entries(v) {
  codevectors = register_parameter("codevectors", torch::rand({1, g * v, codevector_dim / g}));
  weight_proj = register_module("weight_proj", Linear(in_dim, g * v));
  torch::NoGradGuard ng;
  weight_proj->weight.normal_(0.0, 1.0);
  weight_proj->bias.zero_();
}

namespace {
Tensor perplexity(const Tensor& probs /* [N, G, V] */, const Tensor& valid) {
  Tensor p = valid.defined() ? probs.index({valid}) : probs;
  Tensor avg = p.mean(0);  // [G, V]
  return torch::exp(-(avg * torch::log(avg + 1e-7)).sum(-1)).sum();
}
}  // namespace

GumbelQuantizerImpl::Output GumbelQuantizerImpl::forward(const Tensor& x, double temperature, const Tensor& valid) {
  const int64_t N = x.size(0);
  Tensor logits = weight_proj(x).to(torch::kFloat).view({N, groups, entries});
  Tensor soft = torch::softmax(logits, -1);
  Tensor hard = torch::zeros_like(logits).scatter_(-1, logits.argmax(-1, true), 1.0);
  Output out;
  {
    torch::NoGradGuard ng;
    out.code_perplexity = perplexity(hard, valid);
  }
  out.prob_perplexity = perplexity(soft, valid);
  Tensor assign;
  if (is_training()) {  // straight-through Gumbel softmax: hard forward, soft gradients
    Tensor gumbels = -torch::empty_like(logits).exponential_().log();
    Tensor y_soft = torch::softmax((logits + gumbels) / temperature, -1);
    Tensor y_hard = torch::zeros_like(y_soft).scatter_(-1, y_soft.argmax(-1, true), 1.0);
    assign = y_hard - y_soft.detach() + y_soft;
  } else {
    assign = hard;
  }
  Tensor cv = codevectors.view({groups, entries, -1}).to(torch::kFloat);  // [G, V, d]
  out.quantized = torch::einsum("ngv,gvd->ngd", {assign, cv}).reshape({N, -1});
  return out;
}

// ---- building blocks --------------------------------------------------------------------------------------
namespace {

class ConvLayerImpl : public torch::nn::Module {
 public:
  ConvLayerImpl(int64_t in, int64_t out, int64_t k, int64_t s, bool bias, const std::string& norm, const NormFactory& cf_norm) {
    conv = register_module("conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(in, out, k).stride(s).bias(bias)));
    if (norm == "group") gn = register_module("layer_norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(out, out).affine(true)));
    if (norm == "layer") ln = register_module("layer_norm", cf_norm(out));
    torch::NoGradGuard ng;
    torch::nn::init::kaiming_normal_(conv->weight);
  }
  Tensor forward(const Tensor& x) {
    Tensor y = conv(x);
    if (gn) y = gn(y);
    if (ln) y = ln->forward(y);
    return torch::gelu(y);
  }
  torch::nn::Conv1d conv{nullptr};
  torch::nn::GroupNorm gn{nullptr};
  NormLayer ln;
};
TORCH_MODULE(ConvLayer);

}  // namespace

PosConvImpl::PosConvImpl(int64_t dim, int64_t kernel, int64_t groups, double dropout) : kernel_(kernel), groups_(groups) {
  auto conv = register_module("conv", std::make_shared<torch::nn::Module>());
  auto param = conv->register_module("parametrizations", std::make_shared<torch::nn::Module>());
  auto weight = param->register_module("weight", std::make_shared<torch::nn::Module>());
  const double std = std::sqrt(4.0 * (1.0 - dropout) / (static_cast<double>(kernel) * dim));  // fairseq
  v = weight->register_parameter("original1", torch::randn({dim, dim / groups, kernel}) * std);
  g = weight->register_parameter("original0", v.detach().norm(2, at::IntArrayRef{0, 1}, true).clone());
  bias = conv->register_parameter("bias", torch::zeros({dim}));
}

torch::Tensor PosConvImpl::forward(const torch::Tensor& x) {
  Tensor w = g * v / v.norm(2, at::IntArrayRef{0, 1}, true);
  Tensor y = torch::conv1d(x, w.to(x.dtype()), bias.to(x.dtype()), 1, kernel_ / 2, 1, groups_);
  if (kernel_ % 2 == 0) y = y.slice(2, 0, y.size(2) - 1);  // SamePad
  return torch::gelu(y);
}

namespace {


class W2VAttentionImpl : public torch::nn::Module {
 public:
  W2VAttentionImpl(int64_t dim, int64_t heads, double dropout) : heads_(heads), dropout_(dropout) {
    k_proj = register_module("k_proj", Linear(dim, dim));
    v_proj = register_module("v_proj", Linear(dim, dim));
    q_proj = register_module("q_proj", Linear(dim, dim));
    out_proj = register_module("out_proj", Linear(dim, dim));
  }
  Tensor forward(const Tensor& x, const Tensor& key_padding) {
    const int64_t B = x.size(0), T = x.size(1), D = x.size(2), hd = D / heads_;
    auto split = [&](const Tensor& t) { return t.view({B, T, heads_, hd}).transpose(1, 2); };
    std::optional<Tensor> mask;
    if (key_padding.defined()) mask = key_padding.logical_not().view({B, 1, 1, T});
    Tensor o = at::scaled_dot_product_attention(split(q_proj(x)), split(k_proj(x)), split(v_proj(x)), mask,
                                                is_training() ? dropout_ : 0.0);
    return out_proj(o.transpose(1, 2).reshape({B, T, D}));
  }
  Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_;
  double dropout_;
};
TORCH_MODULE(W2VAttention);

class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t hidden, double act_dropout, double dropout) : act_dropout_(act_dropout), dropout_(dropout) {
    intermediate_dense = register_module("intermediate_dense", Linear(dim, hidden));
    output_dense = register_module("output_dense", Linear(hidden, dim));
  }
  Tensor forward(const Tensor& x) {
    Tensor h = torch::dropout(torch::gelu(intermediate_dense(x)), act_dropout_, is_training());
    return torch::dropout(output_dense(h), dropout_, is_training());
  }
  Linear intermediate_dense{nullptr}, output_dense{nullptr};

 private:
  double act_dropout_, dropout_;
};
TORCH_MODULE(FeedForward);

class EncoderLayerImpl : public torch::nn::Module {
 public:
  EncoderLayerImpl(const W2V2Options& o, const NormFactory& norm) : pre_(o.layer_norm_first), dropout_(o.dropout) {
    attention = register_module("attention", W2VAttention(o.embed_dim, o.num_heads, o.attention_dropout));
    layer_norm = register_module("layer_norm", norm(o.embed_dim));
    feed_forward = register_module("feed_forward", FeedForward(o.embed_dim, o.ffn_dim, o.activation_dropout, o.dropout));
    final_layer_norm = register_module("final_layer_norm", norm(o.embed_dim));
  }
  Tensor forward(const Tensor& x, const Tensor& key_padding) {
    const bool train = is_training();
    if (pre_) {  // transformers' Wav2Vec2EncoderLayerStableLayerNorm
      Tensor h = x + torch::dropout(attention->forward(layer_norm->forward(x), key_padding), dropout_, train);
      return h + feed_forward->forward(final_layer_norm->forward(h));
    }
    Tensor h = layer_norm->forward(x + torch::dropout(attention->forward(x, key_padding), dropout_, train));
    return final_layer_norm->forward(h + feed_forward->forward(h));
  }
  W2VAttention attention{nullptr};
  NormLayer layer_norm, final_layer_norm;
  FeedForward feed_forward{nullptr};

 private:
  bool pre_;
  double dropout_;
};
TORCH_MODULE(EncoderLayer);

}  // namespace

// ---- the model ------------------------------------------------------------------------------------------
Wav2Vec2Impl::Wav2Vec2Impl(const W2V2Options& o) : opts(o), temperature_(o.gumbel_temp.empty() ? 2.0 : o.gumbel_temp[0]) {
  NormFactory norm = make_norm_factory(o.norm);
  NormOptions conv_norm = o.norm;
  if (o.extractor_norm == "layernorm") conv_norm.type = "layernorm";
  NormFactory cf_norm = make_norm_factory(conv_norm, /*channels_first=*/true);
  auto body = register_module("wav2vec2", std::make_shared<torch::nn::Module>());
  const int64_t D = o.embed_dim, C = o.conv_dim.back();
  masked_spec_embed_ = body->register_parameter("masked_spec_embed", torch::rand({D}));
  auto fe = body->register_module("feature_extractor", std::make_shared<torch::nn::Module>());
  auto convs = fe->register_module("conv_layers", torch::nn::ModuleList());
  conv_layers_ = convs;
  int64_t in = 1;
  for (size_t i = 0; i < o.conv_dim.size(); ++i) {
    const std::string mode = o.extractor_mode == "layer_norm" ? "layer" : (i == 0 ? "group" : "none");
    convs->push_back(ConvLayer(in, o.conv_dim[i], o.conv_kernel[i], o.conv_stride[i], o.conv_bias, mode, cf_norm));
    in = o.conv_dim[i];
  }
  auto fp = body->register_module("feature_projection", std::make_shared<torch::nn::Module>());
  NormOptions feature_norm = o.norm;
  if (o.feature_norm == "layernorm") feature_norm.type = "layernorm";
  if (o.feature_alpha_init > 0) feature_norm.alpha_init = o.feature_alpha_init;
  feature_norm_ = fp->register_module("layer_norm", make_norm_factory(feature_norm)(C));
  projection_ = fp->register_module("projection", Linear(C, D));
  auto enc = body->register_module("encoder", std::make_shared<torch::nn::Module>());
  pos_conv_ = enc->register_module("pos_conv_embed", PosConv(D, o.pos_conv_kernel, o.pos_conv_groups, o.dropout));
  encoder_norm_ = enc->register_module("layer_norm", norm(D));
  layers_ = enc->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) layers_->push_back(EncoderLayer(o, norm));
  if (o.quantize_targets)
    quantizer_ = register_module("quantizer", GumbelQuantizer(C, o.quantizer_groups, o.quantizer_entries, o.codevectors()));
  project_hid_ = register_module("project_hid", Linear(D, o.final_dim));
  project_q_ = register_module("project_q", Linear(o.quantize_targets ? o.codevectors() : C, o.final_dim));
  // transformers' _init_weights: Linear ~ normal(0, 0.02) with zero bias, except the quantiser's
  // projection (normal(0, 1)), the project_* layers and the feature projection, which keep
  // PyTorch's default U(+-1/sqrt(fan_in)) as in fairseq, where only the Transformer layers get
  // BERT's init. (With 0.02 the learned mask embedding, U[0, 1), dwarfs the projected features.)
  torch::NoGradGuard ng;
  for (auto& item : named_modules("", /*include_self=*/false)) {
    const std::string& name = item.key();
    if (name.rfind("quantizer", 0) == 0 || name.rfind("project_", 0) == 0 ||
        name.find("feature_projection") != std::string::npos)
      continue;
    if (auto* lin = item.value()->as<torch::nn::Linear>()) {
      lin->weight.normal_(0.0, 0.02);
      lin->bias.zero_();
    }
  }
}

void Wav2Vec2Impl::set_num_updates(int64_t n) {
  const auto& t = opts.gumbel_temp;
  temperature_ = std::max(t[0] * std::pow(t[2], static_cast<double>(n)), t[1]);
}

std::pair<Tensor, std::vector<int64_t>> Wav2Vec2Impl::features(const Tensor& source, const Tensor& padding_mask) {
  Tensor x = source.unsqueeze(1);
  for (const auto& m : *conv_layers_) x = m->as<ConvLayerImpl>()->forward(x);
  if (opts.feature_grad_mult != 1.0 && is_training())  // fairseq's GradMultiply: same value, scaled gradient
    x = x * opts.feature_grad_mult + x.detach() * (1.0 - opts.feature_grad_mult);
  std::vector<int64_t> lengths;
  const int64_t T = x.size(2);
  for (int64_t b = 0; b < source.size(0); ++b) {
    const int64_t n = padding_mask.defined() ? padding_mask[b].logical_not().sum().item<int64_t>() : source.size(1);
    lengths.push_back(std::min(T, conv_output_length(opts, n)));
  }
  return {x.transpose(1, 2), lengths};
}

Tensor Wav2Vec2Impl::run_encoder(Tensor x, const Tensor& frame_padding) {
  if (frame_padding.defined()) x = x.masked_fill(frame_padding.unsqueeze(-1), 0.0);
  x = x + pos_conv_->forward(x.transpose(1, 2)).transpose(1, 2);
  if (!opts.layer_norm_first) x = encoder_norm_->forward(x);
  x = torch::dropout(x, opts.dropout, is_training());
  for (const auto& layer : *layers_) {
    if (is_training() && opts.layerdrop > 0 && torch::rand({1}).item<double>() < opts.layerdrop) continue;
    x = layer->as<EncoderLayerImpl>()->forward(x, frame_padding);
  }
  if (opts.layer_norm_first) x = encoder_norm_->forward(x);
  return x;
}

Tensor Wav2Vec2Impl::encode(const Tensor& source) {
  Tensor f = feature_norm_->forward(features(source, {}).first);
  Tensor x = projection_(f);
  return run_encoder(x, {});
}

Wav2Vec2Impl::Output Wav2Vec2Impl::forward(const Tensor& source, const Tensor& padding_mask, std::mt19937_64& rng,
                                           std::optional<at::Generator> gen) {
  auto [feats, lengths] = features(source, padding_mask);
  const int64_t B = feats.size(0), T = feats.size(1), C = feats.size(2);
  Tensor features_pen = feats.to(torch::kFloat).pow(2).mean();
  feats = feature_norm_->forward(feats);
  Tensor unmasked = torch::dropout(feats, opts.dropout_features, is_training());
  Tensor x = torch::dropout(projection_(feats), opts.dropout_input, is_training());

  // Frame padding and span masks, utterance by utterance.
  Tensor frame_padding;
  std::vector<uint8_t> mask_host(static_cast<size_t>(B * T), 0), valid_host(static_cast<size_t>(B * T), 0);
  std::vector<std::vector<int64_t>> masked_frames(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    std::vector<uint8_t> m = compute_span_mask(lengths[b], opts.mask_prob, opts.mask_length, opts.min_masks, rng);
    for (int64_t t = 0; t < lengths[b]; ++t) {
      mask_host[b * T + t] = m[t], valid_host[b * T + t] = 1;
      if (m[t]) masked_frames[b].push_back(t);
    }
  }
  if (opts.require_same_masks && B > 1) {  // fairseq: np.random.choice(mask_idc, min_len, replace=False)
    size_t fewest = SIZE_MAX;
    for (const auto& f : masked_frames) fewest = std::min(fewest, f.size());
    for (int64_t b = 0; b < B; ++b) {
      auto& f = masked_frames[b];
      for (size_t i = 0; i < fewest && f.size() > fewest; ++i)
        std::swap(f[i], f[i + static_cast<size_t>(rng() % static_cast<uint64_t>(f.size() - i))]);
      for (size_t i = fewest; i < f.size(); ++i) mask_host[b * T + f[i]] = 0;
    }
  }
  Tensor mask = torch::from_blob(mask_host.data(), {B, T}, torch::kUInt8).to(torch::kBool).to(x.device());
  Tensor valid = torch::from_blob(valid_host.data(), {B, T}, torch::kUInt8).to(torch::kBool).to(x.device());
  if (padding_mask.defined()) frame_padding = valid.logical_not();
  x = torch::where(mask.unsqueeze(-1), masked_spec_embed_.to(x.dtype()).view({1, 1, -1}).expand_as(x), x);
  x = run_encoder(x, frame_padding);

  // Contrastive task on the masked frames: only they are quantised (as fairseq does), so the
  // perplexities, and with them the diversity loss, average over the masked frames.
  Tensor flat_mask = mask.reshape({B * T});
  Tensor masked_features = unmasked.reshape({B * T, C}).index({flat_mask});       // [M, C]
  GumbelQuantizerImpl::Output q;
  if (opts.quantize_targets)
    q = quantizer_->forward(masked_features, temperature_);
  else  // continuous targets: no codebook, no diversity term, no perplexity
    q.quantized = masked_features;
  Tensor y = project_q_(q.quantized.to(x.dtype()))
                 .to(torch::kFloat);                                             // [M, F] positives
  Tensor h = project_hid_(x).reshape({B * T, -1});
  h = h.index({flat_mask}).to(torch::kFloat);                                    // [M, F]
  std::vector<Tensor> neg_idx;
  int64_t offset = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t mb = mask[b].sum().item<int64_t>();
    neg_idx.push_back(sample_distractors(mb, opts.num_negatives, torch::rand({mb, opts.num_negatives}, gen)) + offset);
    offset += mb;
  }
  Tensor negatives = torch::cat(neg_idx, 0).to(y.device());                     // [M, K]
  Tensor neg = y.index({negatives});                                             // [M, K, F]
  Tensor cand = torch::cat({y.unsqueeze(1), neg}, 1);                            // [M, 1+K, F]
  Tensor logits = torch::cosine_similarity(h.unsqueeze(1), cand, -1) / opts.logit_temp;
  Tensor neg_is_pos = (neg == y.unsqueeze(1)).all(-1);
  logits = torch::cat({logits.slice(1, 0, 1), logits.slice(1, 1).masked_fill(neg_is_pos, -INFINITY)}, 1);
  const int64_t M = y.size(0);
  Tensor zeros = torch::zeros({M}, torch::TensorOptions().dtype(torch::kLong).device(logits.device()));
  Tensor ce = torch::nn::functional::cross_entropy(logits, zeros,
                                                   torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  const double GV = static_cast<double>(opts.quantizer_groups * opts.quantizer_entries);
  Tensor diversity = opts.quantize_targets ? (GV - q.prob_perplexity) / GV : torch::zeros({}, ce.options());
  Output out;
  out.masked = M;
  out.mask = mask;
  out.negatives = negatives;
  out.loss_sum = ce + opts.diversity_weight * diversity * static_cast<double>(M) +
                 opts.feature_penalty_weight * features_pen * static_cast<double>(M);
  out.loss = out.loss_sum / static_cast<double>(M);
  out.contrastive_sum = ce.item<double>();
  out.diversity = diversity.item<double>();
  out.feature_penalty = features_pen.item<double>();
  out.accuracy = (logits.argmax(-1) == 0).to(torch::kFloat).mean().item<double>();
  if (opts.quantize_targets) {
    out.prob_perplexity = q.prob_perplexity.item<double>();
    out.code_perplexity = q.code_perplexity.item<double>();
  }
  return out;
}

std::string Wav2Vec2Impl::summary() const {
  std::string norm_desc;
  for (const auto& [name, n] : norm_layers(const_cast<Wav2Vec2Impl&>(*this))) {
    if (name.find("layers.0.layer_norm") != std::string::npos) norm_desc = n->describe();
  }
  int64_t hop = 1;
  for (auto s : opts.conv_stride) hop *= s;
  return fmt::format(
      "Wav2Vec2ForPreTraining: conv feature encoder {} layers ({} channels, hop {} samples = {} ms at 16 kHz, {})\n"
      "  Transformer {} layers x width {}, {} heads, FFN {}, {}; positional conv {} / {} groups\n"
      "  {}; contrastive space {}, {} distractors, mask p {} span {}\n"
      "  norm: {}",
      opts.conv_dim.size(), opts.conv_dim.back(), hop, hop / 16.0, opts.extractor_mode, opts.depth, opts.embed_dim,
      opts.num_heads, opts.ffn_dim, opts.layer_norm_first ? "pre-norm" : "post-norm", opts.pos_conv_kernel,
      opts.pos_conv_groups,
      opts.quantize_targets ? fmt::format("quantiser {} groups x {} entries -> {}", opts.quantizer_groups,
                                          opts.quantizer_entries, opts.codevectors())
                            : std::string("continuous targets (no quantiser)"),
      opts.final_dim,
      opts.num_negatives, opts.mask_prob, opts.mask_length, norm_desc);
}

}  // namespace dyt
