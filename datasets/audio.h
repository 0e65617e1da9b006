// Audio for self-supervised speech models (wav2vec 2.0):
//  - read_audio: WAV / FLAC / OGG (anything libsndfile reads), mixed down to mono and resampled
//    to the target rate with libsoxr (high quality); a corrupt or truncated file raises
//    DataError naming it.
//  - fairseq manifests: first line the root folder, then "relative/path<TAB>num_samples".
//  - scan_audio_tree: writes train/valid manifests for a folder tree (the LibriSpeech layout
//    speaker/chapter/*.flac, or any tree of audio files).
//  - synthesize_speech_corpus: espeak-ng speech (voices, variants, rate and pitch drawn per
//    utterance; sentences from the system word list) as 16 kHz WAV plus manifests.
//  - AudioDataset + AudioLoader: random crops to a maximum length, batches cropped to the
//    shortest utterance (fairseq's default) or zero-padded with a padding mask.
// No LibTorch in the readers; the loader makes tensors.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/loader.h"

namespace dyt {

struct AudioClip {
  std::vector<float> samples;  // mono
  int sample_rate = 0;
};

// Reads `path`, mixes to mono and resamples to `target_rate` (0: keep the file's rate).
AudioClip read_audio(const std::string& path, int target_rate = 16000);
// Writes 16-bit PCM WAV.
void write_wav(const std::string& path, const std::vector<float>& samples, int sample_rate);
// Resamples with libsoxr (exposed for tests).
std::vector<float> resample(const std::vector<float>& in, int from_rate, int to_rate);

struct ManifestEntry {
  std::string path;      // relative to the manifest's root
  int64_t num_samples;   // at 16 kHz
};
struct Manifest {
  std::string root;
  std::vector<ManifestEntry> entries;
};
Manifest read_manifest(const std::string& path);
void write_manifest(const std::string& path, const Manifest& m);

struct ScanOptions {
  std::string ext = "flac";  // file extension to collect
  double valid_percent = 1.0;  // percent of files in valid.tsv
  uint64_t seed = 42;
};
// Walks `root`, writes <out>/train.tsv and <out>/valid.tsv; returns {train, valid} counts.
std::pair<int64_t, int64_t> scan_audio_tree(const std::string& root, const std::string& out, const ScanOptions& o);

struct SpeechCorpusOptions {
  double hours = 1.0;
  uint64_t seed = 0;
  int jobs = 0;                 // parallel espeak-ng processes; 0 = all cores
  double valid_percent = 5.0;
  int min_words = 6, max_words = 24;
  std::string word_list = "/usr/share/dict/words";
};
struct SpeechCorpusReport {
  int64_t utterances = 0, train = 0, valid = 0;
  double seconds = 0;
};
// Synthesises until the corpus holds `hours` of speech. Deterministic for a seed. `progress`
// is called with (seconds so far, seconds wanted) from the calling thread.
SpeechCorpusReport synthesize_speech_corpus(const std::string& out, const SpeechCorpusOptions& o,
                                            const std::function<void(double, double)>& progress = {});

class AudioDataset {
 public:
  // `manifest` is a fairseq .tsv; entries shorter than min_samples are dropped.
  AudioDataset(const std::string& manifest, int64_t min_samples, int sample_rate);
  int64_t size() const { return static_cast<int64_t>(m_.entries.size()); }
  int64_t length(int64_t i) const { return m_.entries[i].num_samples; }
  AudioClip get(int64_t i) const;  // thread-safe
  std::string describe() const { return desc_; }
  double hours() const;

 private:
  Manifest m_;
  int rate_;
  std::string desc_;
};

struct AudioBatch {
  torch::Tensor source;        // [B, T] float
  torch::Tensor padding_mask;  // [B, T] bool, true = padding (all false when cropping)
  int64_t index = 0;
};

struct AudioLoaderOptions {
  int64_t batch_size = 8;
  int64_t max_samples = 250000;  // random crop to at most this many samples
  bool pad = false;              // false: crop the batch to its shortest utterance
  bool normalize = false;        // zero mean, unit variance per utterance
  bool shuffle = true, drop_last = true;
  int64_t workers = 1, prefetch = 4;
  uint64_t seed = 0;
  int64_t rank = 0, world = 1;
  // > 0: batches of up to this many audio samples (fairseq's max_tokens) instead of batch_size
  // utterances: utterances sorted by length, cut greedily so that the batch's longest (cropped to
  // max_samples) times its count stays within the budget.
  int64_t max_tokens = 0;
};

// fairseq's batch_by_size for audio: utterances in descending order of length (capped at
// max_samples; ties broken by a permutation seeded with `seed`), cut greedily into batches whose
// longest x count is at most max_tokens. Every utterance is in exactly one batch; one longer than
// the budget makes a batch of its own.
BatchPlan token_batches(const AudioDataset& data, int64_t max_tokens, int64_t max_samples, uint64_t seed);

// Utterances, each randomly cropped to max_samples (and normalised if asked), collated by
// cropping to the batch's shortest (fairseq's default) or padding to its longest.
class AudioBatches : public BatchBuilder<AudioBatch> {
 public:
  AudioBatches(std::shared_ptr<const AudioDataset> data, const AudioLoaderOptions& o) : data_(std::move(data)), o_(o) {}
  int64_t size() const override { return data_->size(); }
  std::string describe() const override { return data_->describe(); }
  std::string unit() const override { return "utterances"; }
  AudioBatch build(const BatchSlots& s) const override;

 private:
  std::shared_ptr<const AudioDataset> data_;
  AudioLoaderOptions o_;
};

// The image Loader's contract (BatchLoader) over audio.
class AudioLoader : public BatchLoader<AudioBatch> {
 public:
  AudioLoader(std::shared_ptr<const AudioDataset> data, const AudioLoaderOptions& o)
      : BatchLoader<AudioBatch>(std::make_shared<AudioBatches>(data, o), loader_options(data, o)) {}

 private:
  static LoaderOptions loader_options(const std::shared_ptr<const AudioDataset>& data, const AudioLoaderOptions& o) {
    LoaderOptions l;
    l.batch_size = o.batch_size, l.shuffle = o.shuffle, l.drop_last = o.drop_last, l.workers = o.workers;
    l.prefetch = o.prefetch, l.seed = o.seed, l.rank = o.rank, l.world = o.world;
    l.pad_shards = o.drop_last;  // training pads the shards to equal length; evaluation splits exactly
    if (o.max_tokens > 0) l.plan = std::make_shared<const BatchPlan>(token_batches(*data, o.max_tokens, o.max_samples, o.seed));
    return l;
  }
};

}  // namespace dyt
