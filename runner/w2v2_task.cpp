// Task `wav2vec2`: self-supervised speech pretraining (the paper's Table 5). Batches of raw
// 16 kHz audio from fairseq manifests; the model's loss per masked frame; validation loss in
// bits per masked frame (fairseq's reported number) with fixed masks and distractors per batch
// (their own generators, so evaluating does not move the training's random stream). With
// data.synthesize_hours > 0 and no manifests in data.root, an espeak-ng corpus is made first.
#include <fmt/format.h>
#include <unistd.h>

#include <cmath>

#include "datasets/audio.h"
#include "models/wav2vec2.h"
#include "runner/image_data.h"
#include "runner/task.h"
#include "runner/trainer.h"

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;
using torch::Tensor;

namespace {

void ensure_corpus(const ExperimentConfig& cfg, const fs::path& root, const std::string& label) {
  if (fs::exists(root / cfg.data.train_manifest) || cfg.data.synthesize_hours <= 0) return;
  // One process synthesises; others wait for the manifests (the corpus lock is its folder's).
  fs::create_directories(root);
  RunLock lock(root);
  if (!lock.held()) {
    std::fprintf(stderr, "%s waiting for another process to finish synthesising %s\n", label.c_str(), root.c_str());
    lock.wait(24 * 3600.0);
  }
  if (fs::exists(root / cfg.data.train_manifest)) return;
  SpeechCorpusOptions o;
  o.hours = cfg.data.synthesize_hours;
  o.seed = static_cast<uint64_t>(cfg.data.synthesize_seed);
  std::fprintf(stderr, "%s synthesising %.2f h of speech with espeak-ng into %s\n", label.c_str(), o.hours, root.c_str());
  const bool tty = ::isatty(STDERR_FILENO);
  SpeechCorpusReport r = synthesize_speech_corpus(root.string(), o, [&](double have, double want) {
    if (tty) std::fprintf(stderr, "\r%s speech %.0f / %.0f s (%.0f%%)", label.c_str(), have, want, 100.0 * have / want);
  });
  if (tty) std::fprintf(stderr, "\n");
  std::fprintf(stderr, "%s corpus: %lld utterances, %.2f h (%lld train, %lld valid)\n", label.c_str(),
               static_cast<long long>(r.utterances), r.seconds / 3600.0, static_cast<long long>(r.train),
               static_cast<long long>(r.valid));
}

}  // namespace

RunResult run_wav2vec2(RunContext& ctx) {
  const RunSpec& spec = ctx.spec;
  const ExperimentConfig& cfg = spec.config;
  const auto* wo = dynamic_cast<const W2V2Options*>(&cfg.model());
  if (!wo) throw ConfigError(Origin{}, "model.type", "task: wav2vec2 needs model.type: wav2vec2");
  if (dataset_registry().get(cfg.data.dataset).kind != "audio")
    throw ConfigError(Origin{}, "data.dataset", "task: wav2vec2 reads audio: set data.dataset: audio_manifest");
  if (cfg.data.root.empty()) throw ConfigError(Origin{}, "data.root", "set data.root to the folder holding the manifests");
  const fs::path root = resolve_data_path(cfg.data.root);
  ensure_corpus(cfg, root, ctx.label);
  const torch::Device device = ctx.device;
  const bool bf16 = use_bf16(cfg, device);

  auto train_set = std::make_shared<AudioDataset>((root / cfg.data.train_manifest).string(), cfg.data.min_sample_size, 16000);
  auto val_set = std::make_shared<AudioDataset>((root / cfg.data.valid_manifest).string(), cfg.data.min_sample_size, 16000);
  AudioLoaderOptions lo;
  lo.batch_size = cfg.data.batch_size, lo.max_samples = cfg.data.max_sample_size, lo.pad = cfg.data.pad;
  lo.normalize = cfg.data.normalize, lo.workers = cfg.data.workers, lo.prefetch = cfg.data.prefetch;
  lo.seed = static_cast<uint64_t>(spec.seed), lo.rank = ctx.rank, lo.world = ctx.world;
  AudioLoader train(train_set, lo);
  train.start_epoch(0);
  lo.shuffle = false, lo.drop_last = false, lo.seed = 4242;  // the same validation crops in every run
  lo.batch_size = cfg.data.eval_batch_size > 0 ? cfg.data.eval_batch_size : cfg.data.batch_size;
  AudioLoader val(val_set, lo);

  torch::manual_seed(static_cast<uint64_t>(spec.seed));
  auto model = std::dynamic_pointer_cast<Wav2Vec2Impl>(model_registry().get(cfg.model_type).build(cfg.model()));
  json init_report = initialise_from(ctx, *model);
  model->to(device);
  Optimizer opt(cfg.optim, make_param_groups(*model, cfg.optim.weight_decay, cfg.optim.layer_decay));
  const double ln2 = std::log(2.0);
  const bool quantised = model->opts.quantize_targets;

  LoopHooks hooks;
  hooks.steps_per_epoch = train.batches_per_epoch();
  hooks.primary_metric = "loss_bits";
  hooks.higher_is_better = false;
  hooks.start_epoch = [&](int64_t epoch, int64_t first) { train.start_epoch(epoch, first); };
  hooks.next_step = [&](int64_t step, StepResult& r, int64_t& index) {
    AudioBatch b;
    if (!train.next(b)) return false;
    index = b.index;
    std::mt19937_64 rng(mix_seed(static_cast<uint64_t>(spec.seed) + 77, static_cast<uint64_t>(step)));
    Tensor src = b.source.to(device, true);
    Tensor pad = cfg.data.pad ? b.padding_mask.to(device, true) : Tensor();
    AutocastGuard ac(bf16, device.type());
    Wav2Vec2Impl::Output o = model->forward(src, pad, rng);
    r.loss = o.loss;
    r.samples = src.size(0);
    r.extra = {{"loss_bits", o.loss.item<double>() / ln2}, {"contrastive_bits", o.contrastive_sum / o.masked / ln2},
               {"accuracy", o.accuracy}, {"masked_frames", static_cast<double>(o.masked)}};
    if (quantised)  // continuous targets have no codebook to report on
      r.extra.update({{"prob_perplexity", o.prob_perplexity}, {"code_perplexity", o.code_perplexity},
                      {"temperature", model->temperature()}});
    return true;
  };
  hooks.after_step = [&](int64_t step) { model->set_num_updates(step); };
  hooks.evaluate = [&](int64_t) {
    torch::NoGradGuard ng;
    model->eval();
    AutocastGuard ac(bf16, device.type());
    val.start_epoch(0);
    AudioBatch b;
    double loss = 0, contrastive = 0, correct = 0, ppl = 0;
    int64_t masked = 0, batches = 0;
    while (val.next(b)) {
      std::mt19937_64 rng(mix_seed(999, static_cast<uint64_t>(b.index)));
      auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(31337 + b.index));
      Tensor pad = cfg.data.pad ? b.padding_mask.to(device) : Tensor();
      Wav2Vec2Impl::Output o = model->forward(b.source.to(device), pad, rng, gen);
      loss += o.loss_sum.item<double>();
      contrastive += o.contrastive_sum;
      correct += o.accuracy * static_cast<double>(o.masked);
      ppl += o.code_perplexity;
      masked += o.masked;
      ++batches;
    }
    model->train();
    const double m = static_cast<double>(std::max<int64_t>(1, masked));
    json out = {{"loss_bits", loss / m / ln2}, {"contrastive_bits", contrastive / m / ln2}, {"accuracy", correct / m},
                {"masked_frames", masked}};
    if (quantised) out["code_perplexity"] = ppl / std::max<int64_t>(1, batches);
    return out;
  };
  json summary = {{"experiment", spec.experiment}, {"variant", spec.variant}, {"seed", spec.seed},
                  {"params", count_parameters(*model)},
                  {"data", fmt::format("{}; validation {}", train_set->describe(), val_set->describe())}};
  if (!init_report.is_null()) summary["init"] = init_report;
  return run_training_loop(ctx, cfg, {*model, nullptr, opt}, hooks, summary);
}

}  // namespace dyt
