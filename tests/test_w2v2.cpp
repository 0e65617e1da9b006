// wav2vec 2.0: the conv output length formula, parameter counts against the reference model,
// mask span statistics against their exact expectation, distractors that are never the
// positive, the quantiser's straight-through estimator and perplexity bounds, learning on a tiny
// corpus; audio readers on files written in other formats, rates and channel counts.
#include <gtest/gtest.h>
#include <set>
#include <sndfile.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "datasets/audio.h"
#include "models/wav2vec2.h"
#include "runner/train/components.h"
#include "test_util.h"

using namespace dyt;
using torch::Tensor;

namespace {
W2V2Options small() {
  W2V2Options o;
  o.conv_dim = std::vector<int64_t>(7, 32);
  o.embed_dim = 32, o.depth = 2, o.num_heads = 4, o.ffn_dim = 64, o.pos_conv_kernel = 16, o.pos_conv_groups = 4;
  o.final_dim = 16, o.quantizer_entries = 16, o.num_negatives = 10;
  o.dropout = o.attention_dropout = o.dropout_input = o.dropout_features = o.layerdrop = 0.0;
  o.norm.eps = 1e-5;
  return o;
}

double log_choose(int64_t n, int64_t k) { return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0); }
}  // namespace

TEST(W2V2, ConvOutputLengthFormulaMatchesTheConvs) {
  W2V2Options o = small();
  auto m = std::make_shared<Wav2Vec2Impl>(o);
  m->eval();
  for (int64_t n : {400, 401, 16000, 16001, 23456, 80000}) {
    auto f = m->features(torch::randn({1, n}), {}).first;
    EXPECT_EQ(f.size(1), conv_output_length(o, n)) << n;
  }
  EXPECT_EQ(conv_output_length(W2V2Options{}, 16000), 49);  // 20 ms frames, receptive field 400 samples
  EXPECT_EQ(conv_output_length(W2V2Options{}, 399), 0);
}

TEST(W2V2, ParameterCountsEqualTheReferenceModels) {
  W2V2Options base;  // transformers Wav2Vec2ForPreTraining, Base
  EXPECT_EQ(count_parameters(Wav2Vec2Impl(base)), 95044608);
  W2V2Options large = base;
  large.extractor_mode = "layer_norm", large.embed_dim = 1024, large.depth = 24, large.num_heads = 16;
  large.ffn_dim = 4096, large.layer_norm_first = true, large.final_dim = 768;
  EXPECT_EQ(count_parameters(Wav2Vec2Impl(large)), 317387008);
  base.norm.type = "dyt";  // feature LayerNorm + encoder LayerNorm + 2 per layer; GroupNorm stays
  EXPECT_EQ(count_parameters(Wav2Vec2Impl(base)), 95044608 + 1 + 1 + 24);
  large.norm.type = "dyt";  // the per-conv LayerNorms stay LayerNorm by default (extractor_norm: layernorm)
  EXPECT_EQ(count_parameters(Wav2Vec2Impl(large)), 317387008 + 1 + 1 + 48);
  large.extractor_norm = "model";  // ... or become DyT too: one alpha more per conv layer
  EXPECT_EQ(count_parameters(Wav2Vec2Impl(large)), 317387008 + 1 + 1 + 48 + 7);
}

TEST(W2V2, MaskSpansMatchTheirExactExpectation) {
  const int64_t T = 200, L = 10, min_masks = 2;
  const double p = 0.65;
  std::mt19937_64 rng(1);
  const int draws = 3000;
  double masked = 0;
  for (int d = 0; d < draws; ++d) {
    auto m = compute_span_mask(T, p, L, min_masks, rng);
    int64_t run = 0;
    for (int64_t t = 0; t <= T; ++t) {  // every masked run is at least one span long
      if (t < T && m[t]) {
        ++run;
      } else {
        if (run > 0) EXPECT_GE(run, L);
        run = 0;
      }
    }
    EXPECT_EQ(m[T - 1], 0) << "starts lie in [0, T - L): the last frame is never masked";
    for (auto v : m) masked += v;
  }
  // k = int(p T / L + U) spans (13 or 14 here, equally likely) with starts drawn without
  // replacement from N = T - L positions; frame t is covered by c_t starts, so
  // P(t unmasked) = C(N - c_t, k) / C(N, k).
  const int64_t N = T - L;
  const double x = p * T / L;
  double expect = 0;
  for (int64_t k : {static_cast<int64_t>(std::floor(x)), static_cast<int64_t>(std::floor(x)) + 1}) {
    const double pk = k == static_cast<int64_t>(std::floor(x)) ? 1.0 - (x - std::floor(x)) : x - std::floor(x);
    double frac = 0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t c = std::min(t, N - 1) - std::max<int64_t>(0, t - L + 1) + 1;
      const double unmasked = c <= 0 ? 1.0 : (N - c < k ? 0.0 : std::exp(log_choose(N - c, k) - log_choose(N, k)));
      frac += (1.0 - unmasked) / T;
    }
    expect += pk * frac;
  }
  EXPECT_NEAR(masked / draws / T, expect, 0.005) << "expected masked fraction " << expect;
  std::mt19937_64 r2(2);
  auto tiny = compute_span_mask(30, 0.01, 10, 2, r2);  // min_masks spans even at a tiny mask_prob
  const int n = std::accumulate(tiny.begin(), tiny.end(), 0);
  EXPECT_GE(n, 10);
  EXPECT_LE(n, 20);
}

TEST(W2V2, DistractorsNeverIncludeThePositive) {
  for (int64_t M : {2, 3, 17, 100}) {
    Tensor idx = sample_distractors(M, 50, torch::rand({M, 50}));
    EXPECT_GE(idx.min().item<int64_t>(), 0);
    EXPECT_LT(idx.max().item<int64_t>(), M);
    EXPECT_FALSE((idx == torch::arange(M).unsqueeze(1)).any().item<bool>()) << M;
    if (M > 2) EXPECT_EQ(std::get<0>(at::_unique(idx)).numel(), M) << "all other frames get drawn";
  }
  Tensor edge = sample_distractors(5, 1, torch::tensor({0.0f, 0.999999f, 0.5f, 0.25f, 0.0f}).view({5, 1}));
  EXPECT_TRUE(torch::equal(edge.flatten(), torch::tensor({1, 4, 3, 1, 0}, torch::kLong)));
  EXPECT_THROW(sample_distractors(1, 4, torch::rand({1, 4})), c10::Error);
}

TEST(W2V2, QuantiserIsStraightThroughWithBoundedPerplexity) {
  torch::manual_seed(3);
  GumbelQuantizer q(8, 2, 5, 6);
  q->train();
  Tensor x = torch::randn({40, 8});
  auto out = q->forward(x, 2.0);
  // Forward: every frame's vector is exactly one codevector per group.
  Tensor cv = q->codevectors.view({2, 5, 3});
  for (int64_t n = 0; n < 40; ++n)
    for (int64_t g = 0; g < 2; ++g) {
      Tensor v = out.quantized[n].slice(0, g * 3, g * 3 + 3);
      EXPECT_TRUE(((cv[g] - v).abs().sum(1) < 1e-6).any().item<bool>());
    }
  // Backward: the soft path carries gradients to the projection.
  out.quantized.sum().backward();
  EXPECT_GT(q->weight_proj->weight.grad().abs().sum().item<double>(), 0.0);
  // Perplexity: between G (one code per group) and G * V (uniform use).
  EXPECT_GE(out.prob_perplexity.item<double>(), 2.0 - 1e-4);
  EXPECT_LE(out.prob_perplexity.item<double>(), 10.0 + 1e-4);
  EXPECT_LE(out.code_perplexity.item<double>(), 10.0 + 1e-4);
  {
    torch::NoGradGuard ng;
    q->weight_proj->weight.zero_();
    q->weight_proj->bias.zero_();
  }
  EXPECT_NEAR(q->forward(x, 2.0).prob_perplexity.item<double>(), 10.0, 1e-3);  // uniform logits
  q->eval();
  EXPECT_NEAR(q->forward(x, 2.0).code_perplexity.item<double>(), 2.0, 1e-4);   // ties pick one code
}

TEST(W2V2, ContinuousTargetsSkipTheQuantiser) {
  // fairseq's quantize_targets: false: no quantiser, project_q maps the conv features (C) to the
  // contrastive space, no diversity term; everything else is the quantised model's.
  W2V2Options o = small();
  torch::manual_seed(8);
  Wav2Vec2Impl quantised(o);
  o.quantize_targets = false;
  Wav2Vec2Impl continuous(o);
  int64_t quantiser = 0;
  for (const auto& item : quantised.named_parameters(true))
    if (item.key().rfind("quantizer.", 0) == 0) quantiser += item.value().numel();
  for (const auto& item : continuous.named_parameters(true)) EXPECT_NE(item.key().rfind("quantizer.", 0), 0u) << item.key();
  const int64_t C = o.conv_dim.back();
  EXPECT_EQ(quantiser, o.quantizer_groups * o.quantizer_entries * (C + 1) + o.codevectors() * o.quantizer_entries);
  EXPECT_EQ(count_parameters(continuous),
            count_parameters(quantised) - quantiser + (C - o.codevectors()) * o.final_dim);
  std::mt19937_64 rng(2);
  Tensor x = torch::randn({2, 8000});
  auto out = continuous.forward(x, {}, rng);
  EXPECT_EQ(out.diversity, 0.0);
  EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  EXPECT_GT(out.masked, 0);
  out.loss.backward();
  auto params = continuous.named_parameters(true);
  EXPECT_GT(params["project_q.weight"].grad().abs().sum().item<double>(), 0.0);
  EXPECT_GT(params["wav2vec2.feature_extractor.conv_layers.0.conv.weight"].grad().abs().sum().item<double>(), 0.0);
}

// fairseq's require_same_masks: spans overlap at random, so utterances draw different numbers of
// masked frames; with the option every utterance keeps as many as the batch's fewest (a random
// subset of its own), without it they keep their own.
TEST(W2V2, RequireSameMasksGivesEveryUtteranceTheSameCount) {
  W2V2Options o = small();
  o.mask_prob = 0.5, o.mask_length = 4;
  for (bool same : {true, false}) {
    o.require_same_masks = same;
    torch::manual_seed(3);
    Wav2Vec2Impl m(o);
    m.eval();
    torch::NoGradGuard ng;
    std::set<int64_t> counts;
    for (uint64_t seed = 0; seed < 4; ++seed) {
      std::mt19937_64 rng(seed);
      auto out = m.forward(torch::randn({4, 16000}), {}, rng);
      for (int64_t b = 0; b < 4; ++b) counts.insert(out.mask[b].sum().item<int64_t>());
      if (same) {
        EXPECT_EQ(counts.size(), 1u) << "seed " << seed;
        counts.clear();
      }
    }
    if (!same) EXPECT_GT(counts.size(), 1u);  // the check above can fail: counts do differ by utterance
  }
}

TEST(W2V2, FeatureNormFollowsTheModelOrStaysLayerNorm) {
  W2V2Options o = small();
  o.norm.type = "dyt";
  auto alphas = [](const W2V2Options& opts) {
    std::vector<std::string> names;
    for (const auto& item : Wav2Vec2Impl(opts).named_parameters(true))
      if (item.key().size() > 6 && item.key().compare(item.key().size() - 6, 6, ".alpha") == 0) names.push_back(item.key());
    return names;
  };
  const auto all = alphas(o);  // feature norm + encoder norm + two per layer
  EXPECT_EQ(all.size(), static_cast<size_t>(2 + 2 * o.depth));
  EXPECT_NE(std::find(all.begin(), all.end(), "wav2vec2.feature_projection.layer_norm.alpha"), all.end());
  o.feature_norm = "layernorm";
  const auto kept = alphas(o);
  EXPECT_EQ(kept.size(), all.size() - 1);
  EXPECT_EQ(std::find(kept.begin(), kept.end(), "wav2vec2.feature_projection.layer_norm.alpha"), kept.end());
}

TEST(W2V2, FeatureNormTakesItsOwnAlpha0) {
  W2V2Options o = small();
  o.norm.type = "dyt", o.norm.alpha_init = 0.5, o.feature_alpha_init = 3.0;
  Wav2Vec2Impl m(o);
  for (const auto& item : m.named_parameters(true)) {
    const std::string& k = item.key();
    if (k.size() < 6 || k.compare(k.size() - 6, 6, ".alpha") != 0) continue;
    const double want = k == "wav2vec2.feature_projection.layer_norm.alpha" ? 3.0 : 0.5;
    EXPECT_FLOAT_EQ(item.value().item<float>(), want) << k;
  }
}

TEST(W2V2, LossDecreasesOnATinyCorpus) {
  torch::manual_seed(4);
  W2V2Options o = small();
  o.feature_grad_mult = 1.0;
  auto m = std::make_shared<Wav2Vec2Impl>(o);
  // Four 0.5 s "utterances": sums of tones, so frames differ in a learnable way.
  Tensor t = torch::arange(8000).to(torch::kFloat) / 16000.0;
  Tensor batch = torch::stack({torch::sin(2 * M_PI * 220 * t) + 0.5 * torch::sin(2 * M_PI * 880 * t * (1 + t)),
                               torch::sin(2 * M_PI * 330 * t * (1 + 2 * t)), torch::sin(2 * M_PI * 550 * t) * t,
                               torch::sin(2 * M_PI * 150 * t) + torch::sin(2 * M_PI * 1200 * t)});
  OptimOptions oo;
  oo.lr = 2e-3, oo.betas = {0.9, 0.98}, oo.eps = 1e-6;
  Optimizer opt(oo, make_param_groups(*m, 0.01, 1.0));
  auto loss_at = [&](int64_t seed) {
    torch::NoGradGuard ng;
    m->eval();
    std::mt19937_64 rng(seed);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
    double l = m->forward(batch, {}, rng, gen).contrastive_sum;
    m->train();
    return l;
  };
  const double before = loss_at(7);
  for (int step = 0; step < 60; ++step) {
    std::mt19937_64 rng(100 + step);
    auto out = m->forward(batch, {}, rng);
    out.loss.backward();
    opt.step(2e-3);
    opt.zero_grad();
    m->set_num_updates(step + 1);
  }
  EXPECT_LT(loss_at(7), 0.8 * before);
  EXPECT_LT(m->temperature(), 2.0);
}

// ---- audio files --------------------------------------------------------------------------------------
namespace {
void write_sf(const std::string& path, int format, int rate, int channels, const std::vector<float>& interleaved) {
  SF_INFO info{};
  info.samplerate = rate, info.channels = channels, info.format = format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  ASSERT_NE(f, nullptr) << sf_strerror(nullptr);
  sf_writef_float(f, interleaved.data(), static_cast<sf_count_t>(interleaved.size() / channels));
  sf_close(f);
}
}  // namespace

TEST(Audio, ReadsWavAndFlacAtOtherRatesAndInStereo) {
  dyt::test::TempDir d;
  const int rate = 44100;
  std::vector<float> stereo;
  for (int i = 0; i < rate; ++i) {  // 1 s: left 440 Hz, right silent
    stereo.push_back(0.5f * std::sin(2 * M_PI * 440.0 * i / rate));
    stereo.push_back(0.0f);
  }
  write_sf((d / "a.wav").string(), SF_FORMAT_WAV | SF_FORMAT_PCM_16, rate, 2, stereo);
  write_sf((d / "a.flac").string(), SF_FORMAT_FLAC | SF_FORMAT_PCM_16, rate, 2, stereo);
  for (const char* name : {"a.wav", "a.flac"}) {
    AudioClip c = read_audio((d / name).string(), 16000);
    EXPECT_EQ(c.sample_rate, 16000);
    EXPECT_NEAR(static_cast<double>(c.samples.size()), 16000.0, 2.0) << name;
    // Mono mix-down halves the amplitude; the tone keeps its frequency (880 zero crossings in 1 s).
    int crossings = 0;
    float peak = 0;
    for (size_t i = 1000; i < c.samples.size() - 1000; ++i) {
      crossings += (c.samples[i - 1] < 0) != (c.samples[i] < 0);
      peak = std::max(peak, std::fabs(c.samples[i]));
    }
    EXPECT_NEAR(crossings, 880 * (c.samples.size() - 2000) / 16000.0, 4) << name;
    EXPECT_NEAR(peak, 0.25, 0.01) << name;
  }
}

TEST(Audio, CorruptAndTruncatedFilesNameTheFile) {
  dyt::test::TempDir d;
  std::vector<float> mono(16000, 0.1f);
  write_sf((d / "ok.wav").string(), SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, mono);
  std::ifstream in(d / "ok.wav", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  dyt::test::write_file(d / "cut.wav", bytes.substr(0, bytes.size() / 2));
  std::string msg = dyt::test::error_of<DataError>([&] { read_audio((d / "cut.wav").string()); });
  EXPECT_NE(msg.find("cut.wav: truncated or corrupt audio"), std::string::npos) << msg;
  dyt::test::write_file(d / "junk.flac", "fLaC but not really");
  msg = dyt::test::error_of<DataError>([&] { read_audio((d / "junk.flac").string()); });
  EXPECT_NE(msg.find("junk.flac: cannot read as audio"), std::string::npos) << msg;
}

TEST(Audio, ManifestsAndLoaderBatches) {
  dyt::test::TempDir d;
  Manifest m;
  m.root = d.path().string();
  for (int i = 0; i < 6; ++i) {
    std::vector<float> s(8000 + 2000 * i);
    for (size_t k = 0; k < s.size(); ++k) s[k] = static_cast<float>(i) + 0.001f * (k % 7);
    write_wav((d / ("u" + std::to_string(i) + ".wav")).string(), s, 16000);
    m.entries.push_back({"u" + std::to_string(i) + ".wav", static_cast<int64_t>(s.size())});
  }
  write_manifest((d / "train.tsv").string(), m);
  Manifest r = read_manifest((d / "train.tsv").string());
  EXPECT_EQ(r.entries.size(), 6u);
  EXPECT_EQ(r.entries[3].num_samples, 14000);
  auto ds = std::make_shared<AudioDataset>((d / "train.tsv").string(), 9000, 16000);
  EXPECT_EQ(ds->size(), 5);  // the 8000-sample one is below min_samples
  AudioLoaderOptions lo;
  lo.batch_size = 2, lo.max_samples = 12000, lo.workers = 0, lo.shuffle = false, lo.drop_last = false;
  AudioLoader crop(ds, lo);
  crop.start_epoch(0);
  AudioBatch b;
  ASSERT_TRUE(crop.next(b));
  EXPECT_EQ(b.source.size(1), 10000);  // cropped to the shortest of (10000, 12000 of 12000)
  EXPECT_FALSE(b.padding_mask.any().item<bool>());
  lo.pad = true;
  AudioLoader pad(ds, lo);
  pad.start_epoch(0);
  ASSERT_TRUE(pad.next(b));
  EXPECT_EQ(b.source.size(1), 12000);
  EXPECT_EQ(b.padding_mask[0].sum().item<int64_t>(), 2000);  // the shorter one is padded
  EXPECT_EQ(b.padding_mask[1].sum().item<int64_t>(), 0);
  dyt::test::write_file(d / "bad.tsv", "/root\nno-tab-here 123\n");
  EXPECT_NE(dyt::test::error_of<DataError>([&] { read_manifest((d / "bad.tsv").string()); }).find("bad.tsv:2: expected"), std::string::npos);
}

// fairseq's batching by audio samples (data.max_tokens): every batch within the budget (its
// longest, cropped to max_samples, times its count), batches cut from the length-sorted list (so
// each holds similar lengths), and an epoch over 2 ranks covering every utterance exactly once.
TEST(Audio, TokenBudgetBatchesAreBucketedWithinBudgetAndCoverTheEpoch) {
  dyt::test::TempDir d;
  Manifest m;
  m.root = d.path().string();
  const int n = 40;
  for (int i = 0; i < n; ++i) {
    const int64_t len = 1000 + 137 * ((i * 17) % n);  // distinct lengths 1000 ... 6343, shuffled over i
    write_wav((d / ("u" + std::to_string(i) + ".wav")).string(), std::vector<float>(len, 0.1f), 16000);
    m.entries.push_back({"u" + std::to_string(i) + ".wav", len});
  }
  write_manifest((d / "train.tsv").string(), m);
  auto ds = std::make_shared<AudioDataset>((d / "train.tsv").string(), 0, 16000);
  const int64_t budget = 20000, cap = 6000;
  const BatchPlan plan = token_batches(*ds, budget, cap, 7);
  std::vector<int> seen(n, 0);
  int64_t prev_shortest = INT64_MAX;
  for (const auto& b : plan) {
    int64_t longest = 0, shortest = INT64_MAX;
    for (int64_t i : b) {
      ++seen[i];
      longest = std::max(longest, std::min(ds->length(i), cap));
      shortest = std::min(shortest, std::min(ds->length(i), cap));
    }
    EXPECT_LE(longest * static_cast<int64_t>(b.size()), budget);
    EXPECT_LE(longest, prev_shortest);  // bucketed: no batch's lengths interleave with another's
    prev_shortest = shortest;
  }
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << i;
  EXPECT_GT(plan.size(), 8u);
  EXPECT_LT(plan.size(), 20u);  // greedy: batches near the budget, not one utterance each

  // Through the loader, sharded over 2 ranks (evaluation: exact split), read back by length.
  std::multiset<int64_t> lengths;
  for (int64_t rank = 0; rank < 2; ++rank) {
    AudioLoaderOptions lo;
    lo.max_tokens = budget, lo.max_samples = 100000, lo.pad = true, lo.workers = 1, lo.seed = 7;
    lo.shuffle = true, lo.drop_last = false, lo.rank = rank, lo.world = 2;
    AudioLoader l(ds, lo);
    l.start_epoch(3);
    AudioBatch b;
    while (l.next(b)) {
      for (int64_t r = 0; r < b.source.size(0); ++r)
        lengths.insert(b.source.size(1) - b.padding_mask[r].sum().item<int64_t>());
      EXPECT_LE(b.source.size(0) * b.source.size(1), budget);  // padded to the longest: still within budget
    }
  }
  std::multiset<int64_t> want;
  for (const auto& e : m.entries) want.insert(e.num_samples);
  EXPECT_EQ(lengths, want);
}
