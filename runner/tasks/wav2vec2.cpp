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
#include "runner/tasks/image_data.h"
#include "runner/tasks/task.h"
#include "runner/train/loop.h"

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

namespace {

class Wav2Vec2Task : public Task {
 public:
  explicit Wav2Vec2Task(RunContext& ctx) : Task(ctx) {
    wo_ = dynamic_cast<const W2V2Options*>(&cfg_.model());
    if (!wo_) throw ConfigError(Origin{}, "model.type", "task: wav2vec2 needs model.type: wav2vec2");
    if (dataset_registry().get(cfg_.data.dataset).kind != "audio")
      throw ConfigError(Origin{}, "data.dataset", "task: wav2vec2 reads audio: set data.dataset: audio_manifest");
    if (cfg_.data.root.empty()) throw ConfigError(Origin{}, "data.root", "set data.root to the folder holding the manifests");
  }

  void open_data() override {
    const fs::path root = resolve_data_path(cfg_.data.root);
    ensure_corpus(cfg_, root, ctx_.label);
    const DatasetType& type = dataset_registry().get(cfg_.data.dataset);
    DatasetRequest q;
    q.root = root.string(), q.min_samples = cfg_.data.min_sample_size;
    q.split = "train", q.manifest = cfg_.data.train_manifest;
    train_set_ = type.open_audio(q);
    q.split = "val", q.manifest = cfg_.data.valid_manifest;
    val_set_ = type.open_audio(q);
    AudioLoaderOptions lo;
    lo.batch_size = cfg_.data.batch_size, lo.max_samples = cfg_.data.max_sample_size, lo.pad = cfg_.data.pad;
    lo.normalize = cfg_.data.normalize, lo.workers = resolved_workers(cfg_, ctx_.device.is_cuda()), lo.prefetch = cfg_.data.prefetch;
    lo.seed = static_cast<uint64_t>(spec_.seed), lo.rank = ctx_.rank, lo.world = ctx_.world;
    lo.max_tokens = cfg_.data.max_tokens;
    train_ = std::make_unique<AudioLoader>(train_set_, lo);
    train_->start_epoch(0);
    lo.shuffle = false, lo.drop_last = false, lo.seed = 4242;  // the same validation crops in every run
    lo.batch_size = cfg_.data.eval_batch_size > 0 ? cfg_.data.eval_batch_size : cfg_.data.batch_size;
    val_ = std::make_unique<AudioLoader>(val_set_, lo);
  }
  std::string data_description() const override {
    return fmt::format("{}; validation {}", train_set_->describe(), val_set_->describe());
  }
  int64_t steps_per_epoch() const override { return train_->batches_per_epoch(); }
  void start_epoch(int64_t epoch, int64_t first) override { train_->start_epoch(epoch, first); }

  bool next_loss(int64_t step, StepResult& r, int64_t& index) override {
    AudioBatch b;
    if (!train_->next(b)) return false;
    index = b.index;
    auto& model = w2v2();
    std::mt19937_64 rng(mix_seed(static_cast<uint64_t>(spec_.seed) + 77, static_cast<uint64_t>(step)));
    Tensor src = b.source.to(device_, true);
    Tensor pad = cfg_.data.pad ? b.padding_mask.to(device_, true) : Tensor();
    AutocastGuard ac(precision_, device_.type());
    Wav2Vec2Impl::Output o = model.forward(src, pad, rng);
    r.loss = o.loss;
    r.samples = src.size(0);
    r.extra = {{"loss_bits", o.loss.item<double>() / kLn2}, {"contrastive_bits", o.contrastive_sum / o.masked / kLn2},
               {"accuracy", o.accuracy}, {"masked_frames", static_cast<double>(o.masked)}};
    if (model.opts.quantize_targets)  // continuous targets have no codebook to report on
      r.extra.update({{"prob_perplexity", o.prob_perplexity}, {"code_perplexity", o.code_perplexity},
                      {"temperature", model.temperature()}});
    return true;
  }

  void after_step(int64_t step) override { w2v2().set_num_updates(step); }

  json evaluate(int64_t) override {
    torch::NoGradGuard ng;
    auto& model = w2v2();
    model.eval();
    AutocastGuard ac(precision_, device_.type());
    val_->start_epoch(0);
    AudioBatch b;
    double loss = 0, contrastive = 0, correct = 0, ppl = 0;
    int64_t masked = 0, batches = 0;
    while (val_->next(b)) {
      std::mt19937_64 rng(mix_seed(999, static_cast<uint64_t>(b.index)));
      auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(31337 + b.index));
      Tensor pad = cfg_.data.pad ? b.padding_mask.to(device_) : Tensor();
      Wav2Vec2Impl::Output o = model.forward(b.source.to(device_), pad, rng, gen);
      loss += o.loss_sum.item<double>();
      contrastive += o.contrastive_sum;
      correct += o.accuracy * static_cast<double>(o.masked);
      ppl += o.code_perplexity;
      masked += o.masked;
      ++batches;
    }
    model.train();
    const std::vector<double> t = sum_over_ranks({loss, contrastive, correct, ppl, static_cast<double>(masked),
                                                  static_cast<double>(batches)});
    loss = t[0], contrastive = t[1], correct = t[2], ppl = t[3];
    masked = static_cast<int64_t>(t[4]), batches = static_cast<int64_t>(t[5]);
    const double m = static_cast<double>(std::max<int64_t>(1, masked));
    json out = {{"loss_bits", loss / m / kLn2}, {"contrastive_bits", contrastive / m / kLn2}, {"accuracy", correct / m},
                {"masked_frames", masked}};
    if (model.opts.quantize_targets) out["code_perplexity"] = ppl / std::max<int64_t>(1, batches);
    return out;
  }

  std::vector<MetricInfo> metrics() const override {
    // A uniform guess among the true quantised target and K distractors: log2(1 + K) bits of
    // contrastive loss (the diversity term adds to it), accuracy 1 / (1 + K).
    const auto& o = cfg_.model();
    const auto* w = dynamic_cast<const W2V2Options*>(&o);
    const double k = w ? static_cast<double>(w->num_negatives) : std::nan("");
    const std::string c = w ? fmt::format("uniform guess (1 + {} candidates)", w->num_negatives) : "";
    return {{"loss_bits", "validation loss (bits per masked frame)", false, std::log2(1.0 + k), c},
            {"accuracy", "masked-frame accuracy", true, 1.0 / (1.0 + k), c}};
  }
  std::string train_loss_display() const override { return "training loss (bits per masked frame)";
  }

 private:
  const double kLn2 = std::log(2.0);
  Wav2Vec2Impl& w2v2() { return model_as<Wav2Vec2Impl>("a wav2vec 2.0 model"); }
  const W2V2Options* wo_ = nullptr;
  std::shared_ptr<const AudioDataset> train_set_, val_set_;
  std::unique_ptr<AudioLoader> train_, val_;
};

}  // namespace

std::unique_ptr<Task> make_wav2vec2_task(RunContext& ctx) { return std::make_unique<Wav2Vec2Task>(ctx); }

}  // namespace dyt
