// Audio: libsndfile reading, soxr resampling, fairseq manifests, the audio loader, espeak-ng corpora.
#include "datasets/audio.h"

#include <fmt/format.h>
#include <sndfile.h>
#include <soxr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace dyt {
namespace fs = std::filesystem;

// ---- reading and writing -------------------------------------------------------------------------
std::vector<float> resample(const std::vector<float>& in, int from_rate, int to_rate) {
  if (from_rate == to_rate || in.empty()) return in;
  const size_t out_len = static_cast<size_t>(std::ceil(static_cast<double>(in.size()) * to_rate / from_rate));
  std::vector<float> out(out_len);
  size_t done = 0;
  soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
  soxr_error_t err = soxr_oneshot(from_rate, to_rate, 1, in.data(), in.size(), nullptr, out.data(), out.size(), &done,
                                  nullptr, &q, nullptr);
  if (err) throw DataError(fmt::format("resampling {} Hz -> {} Hz failed: {}", from_rate, to_rate, err));
  out.resize(done);
  return out;
}

AudioClip read_audio(const std::string& path, int target_rate) {
  if (!fs::exists(path)) throw DataError(fmt::format("{}: audio file not found", path));
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f)
    throw DataError(fmt::format("{}: cannot read as audio ({}); the file is corrupt or not WAV/FLAC/OGG", path,
                                sf_strerror(nullptr)));
  if (info.channels <= 0 || info.samplerate <= 0) {
    sf_close(f);
    throw DataError(fmt::format("{}: invalid header ({} channels at {} Hz)", path, info.channels, info.samplerate));
  }
  // libsndfile reads what is there of a cut WAV/AIFF and notes the shortfall in its log
  // ("data : 32000 (should be 15956)"): a truncated file, not a short one.
  char log[2048] = {0};
  sf_command(f, SFC_GET_LOG_INFO, log, sizeof log);
  if (std::strstr(log, "should be") != nullptr && (std::strstr(log, "data :") != nullptr || std::strstr(log, "SSND") != nullptr)) {
    sf_close(f);
    throw DataError(fmt::format("{}: truncated or corrupt audio: the header promises more data than the file holds; "
                                "replace the file",
                                path));
  }
  std::vector<float> inter(static_cast<size_t>(info.frames) * info.channels);
  const sf_count_t got = sf_readf_float(f, inter.data(), info.frames);
  const int err = sf_error(f);
  sf_close(f);
  if (err != SF_ERR_NO_ERROR || got < info.frames)
    throw DataError(fmt::format("{}: truncated or corrupt audio: the header promises {} frames, {} could be read; "
                                "replace the file",
                                path, static_cast<long long>(info.frames), static_cast<long long>(got)));
  AudioClip clip;
  clip.samples.resize(static_cast<size_t>(got));
  for (sf_count_t i = 0; i < got; ++i) {  // mix down to mono
    float s = 0;
    for (int c = 0; c < info.channels; ++c) s += inter[static_cast<size_t>(i) * info.channels + c];
    clip.samples[static_cast<size_t>(i)] = s / static_cast<float>(info.channels);
  }
  clip.sample_rate = info.samplerate;
  if (target_rate > 0 && target_rate != info.samplerate) {
    clip.samples = resample(clip.samples, info.samplerate, target_rate);
    clip.sample_rate = target_rate;
  }
  return clip;
}

void write_wav(const std::string& path, const std::vector<float>& samples, int sample_rate) {
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  const std::string tmp = path + ".tmp";
  SNDFILE* f = sf_open(tmp.c_str(), SFM_WRITE, &info);
  if (!f) throw DataError(fmt::format("{}: cannot write ({})", path, sf_strerror(nullptr)));
  sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const sf_count_t n = sf_writef_float(f, samples.data(), static_cast<sf_count_t>(samples.size()));
  sf_close(f);
  if (n != static_cast<sf_count_t>(samples.size()) || std::rename(tmp.c_str(), path.c_str()) != 0)
    throw DataError(fmt::format("{}: writing failed (disk full?)", path));
}

// ---- manifests ---------------------------------------------------------------------------------------
Manifest read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(fmt::format("{}: manifest not found; make one with `dyt data manifest` or `dyt data speech`", path));
  Manifest m;
  if (!std::getline(in, m.root)) throw DataError(fmt::format("{}: empty manifest (the first line is the root folder)", path));
  std::string line;
  int64_t lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    auto tab = line.find('\t');
    int64_t n = 0;
    try {
      if (tab == std::string::npos) throw std::invalid_argument("no tab");
      n = std::stoll(line.substr(tab + 1));
    } catch (const std::exception&) {
      throw DataError(fmt::format("{}:{}: expected 'relative/path<TAB>num_samples', got '{}'", path, lineno, line));
    }
    m.entries.push_back({line.substr(0, tab), n});
  }
  return m;
}

void write_manifest(const std::string& path, const Manifest& m) {
  std::ostringstream s;
  s << m.root << "\n";
  for (const auto& e : m.entries) s << e.path << "\t" << e.num_samples << "\n";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << s.str();
    if (!out) throw DataError(fmt::format("{}: cannot write the manifest", path));
  }
  fs::rename(tmp, path);
}

std::pair<int64_t, int64_t> scan_audio_tree(const std::string& root, const std::string& out, const ScanOptions& o) {
  if (!fs::is_directory(root)) throw DataError(fmt::format("{}: not a folder", root));
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().extension() == "." + o.ext) files.push_back(fs::relative(e.path(), root).string());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw DataError(fmt::format("{}: no .{} files below this folder", root, o.ext));
  Manifest train, valid;
  train.root = valid.root = fs::absolute(root).string();
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> u(0, 100);
  for (const auto& rel : files) {
    SF_INFO info{};
    SNDFILE* f = sf_open((fs::path(root) / rel).c_str(), SFM_READ, &info);
    if (!f) throw DataError(fmt::format("{}: cannot read as audio ({})", (fs::path(root) / rel).string(), sf_strerror(nullptr)));
    sf_close(f);
    const int64_t n16k = static_cast<int64_t>(std::llround(static_cast<double>(info.frames) * 16000.0 / info.samplerate));
    (u(rng) < o.valid_percent ? valid : train).entries.push_back({rel, n16k});
  }
  fs::create_directories(out);
  write_manifest((fs::path(out) / "train.tsv").string(), train);
  write_manifest((fs::path(out) / "valid.tsv").string(), valid);
  return {static_cast<int64_t>(train.entries.size()), static_cast<int64_t>(valid.entries.size())};
}

// ---- speech synthesis ----------------------------------------------------------------------------------
namespace {

// English voices of espeak-ng's own data (the mbrola ones need an extra program).
const std::vector<std::string> kVoices = {"en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                                          "en-gb-x-gbcwmd", "en-029", "en-us-nyc"};
const std::vector<std::string> kVariants = {"m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3",
                                            "f4", "f5", "klatt", "klatt2", "klatt3", "croak", "whisper"};

std::vector<std::string> load_words(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw DataError(fmt::format("{}: word list not found; install it (Debian: apt-get install wamerican) or pass --words", path));
  std::vector<std::string> words;
  std::string w;
  while (std::getline(in, w)) {
    if (w.size() < 2 || w.size() > 12) continue;
    if (std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; })) words.push_back(w);
  }
  if (words.size() < 1000) throw DataError(fmt::format("{}: only {} usable words", path, words.size()));
  return words;
}

struct Utterance {
  std::string voice, text;
  int rate = 0, pitch = 0;
};

}  // namespace

SpeechCorpusReport synthesize_speech_corpus(const std::string& out, const SpeechCorpusOptions& o,
                                            const std::function<void(double, double)>& progress) {
  if (std::system("command -v espeak-ng > /dev/null 2>&1") != 0)
    throw DataError("espeak-ng not found; install it (Debian: apt-get install espeak-ng, or make setup)");
  const std::vector<std::string> words = load_words(o.word_list);
  const fs::path root = fs::absolute(out);
  fs::create_directories(root / "wav");
  const int jobs = o.jobs > 0 ? o.jobs : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const double wanted = o.hours * 3600.0;
  // Utterance k's parameters depend on (seed, k) alone, so the corpus is the same whatever the
  // number of jobs; synthesis stops at the first k where the total reaches `wanted`.
  auto make = [&](int64_t k) {
    std::mt19937_64 rng(mix_seed(o.seed, static_cast<uint64_t>(k)));
    Utterance u;
    u.voice = kVoices[rng() % kVoices.size()] + "+" + kVariants[rng() % kVariants.size()];
    u.rate = 110 + static_cast<int>(rng() % 111);   // words per minute, 110..220
    u.pitch = 20 + static_cast<int>(rng() % 61);    // 20..80
    const int n = o.min_words + static_cast<int>(rng() % static_cast<uint64_t>(o.max_words - o.min_words + 1));
    for (int i = 0; i < n; ++i) u.text += (i ? " " : "") + words[rng() % words.size()];
    return u;
  };
  std::mutex mu;
  std::map<int64_t, double> durations;  // k -> seconds
  std::atomic<int64_t> next{0};
  std::atomic<bool> done{false};
  std::exception_ptr error;
  auto worker = [&] {
    const std::string tmp = (root / fmt::format(".synth{}_{}.wav", ::getpid(), std::hash<std::thread::id>()(std::this_thread::get_id()))).string();
    while (!done) {
      const int64_t k = next++;
      try {
        Utterance u = make(k);
        const std::string cmd = fmt::format("espeak-ng -v '{}' -s {} -p {} -w '{}' '{}' 2>/dev/null", u.voice, u.rate, u.pitch, tmp, u.text);
        if (std::system(cmd.c_str()) != 0) throw DataError(fmt::format("espeak-ng failed on: {}", cmd));
        AudioClip c = read_audio(tmp, 16000);
        write_wav((root / "wav" / fmt::format("utt{:06d}.wav", k)).string(), c.samples, 16000);
        std::lock_guard<std::mutex> lock(mu);
        durations[k] = static_cast<double>(c.samples.size()) / 16000.0;
        double total = 0;  // the prefix sum decides where the corpus ends
        int64_t i = 0;
        for (auto it = durations.begin(); it != durations.end() && it->first == i; ++it, ++i) total += it->second;
        if (total >= wanted) done = true;
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        done = true;
      }
    }
    std::remove(tmp.c_str());
  };
  std::vector<std::thread> pool;
  for (int j = 0; j < jobs; ++j) pool.emplace_back(worker);
  while (!done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (progress) {
      std::lock_guard<std::mutex> lock(mu);
      double total = 0;
      for (const auto& [k, d] : durations) total += d;
      progress(total, wanted);
    }
  }
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  // Keep the shortest prefix 0..K that reaches `wanted`; drop utterances synthesised past it.
  SpeechCorpusReport r;
  Manifest train, valid;
  train.root = valid.root = root.string();
  int64_t k = 0;
  // Every n-th utterance goes to validation (n = 100 / valid_percent), and at least one does.
  const int64_t every = std::max<int64_t>(2, std::llround(100.0 / std::max(o.valid_percent, 1e-9)));
  for (auto it = durations.begin(); it != durations.end() && it->first == k; ++it, ++k) {
    if (r.seconds >= wanted) break;
    r.seconds += it->second;
    const bool is_valid = o.valid_percent > 0 && k % every == every - 1;
    (is_valid ? valid : train).entries.push_back({fmt::format("wav/utt{:06d}.wav", k), std::llround(it->second * 16000.0)});
  }
  if (valid.entries.empty() && o.valid_percent > 0 && train.entries.size() > 1) {
    valid.entries.push_back(train.entries.back());
    train.entries.pop_back();
  }
  for (auto it = durations.lower_bound(k); it != durations.end(); ++it)
    fs::remove(root / "wav" / fmt::format("utt{:06d}.wav", it->first));
  write_manifest((root / "train.tsv").string(), train);
  write_manifest((root / "valid.tsv").string(), valid);
  r.utterances = k;
  r.train = static_cast<int64_t>(train.entries.size());
  r.valid = static_cast<int64_t>(valid.entries.size());
  return r;
}

// ---- data set and loader ----------------------------------------------------------------------------------
AudioDataset::AudioDataset(const std::string& manifest, int64_t min_samples, int sample_rate) : rate_(sample_rate) {
  Manifest all = read_manifest(manifest);
  m_.root = all.root;
  int64_t dropped = 0;
  for (auto& e : all.entries) {
    if (e.num_samples >= min_samples) m_.entries.push_back(e);
    else ++dropped;
  }
  if (m_.entries.empty())
    throw DataError(fmt::format("{}: no utterance of at least {} samples ({} listed); lower data.min_sample_size or "
                                "point data.root at another corpus",
                                manifest, min_samples, all.entries.size()));
  desc_ = fmt::format("{} ({} utterances, {:.2f} h{})", manifest, m_.entries.size(), hours(),
                      dropped ? fmt::format(", {} shorter than {} samples skipped", dropped, min_samples) : "");
}

double AudioDataset::hours() const {
  double s = 0;
  for (const auto& e : m_.entries) s += static_cast<double>(e.num_samples);
  return s / rate_ / 3600.0;
}

AudioClip AudioDataset::get(int64_t i) const { return read_audio((fs::path(m_.root) / m_.entries[i].path).string(), rate_); }

BatchPlan token_batches(const AudioDataset& data, int64_t max_tokens, int64_t max_samples, uint64_t seed) {
  const int64_t n = data.size();
  std::vector<int64_t> order = epoch_order(n, seed, 0, true, 0, 1);  // the random tie-break
  auto len = [&](int64_t i) { return std::min(data.length(i), max_samples); };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return len(a) > len(b); });
  BatchPlan plan;
  std::vector<int64_t> batch;
  int64_t longest = 0;
  for (int64_t i : order) {
    const int64_t l = len(i);
    if (!batch.empty() && std::max(longest, l) * static_cast<int64_t>(batch.size() + 1) > max_tokens) {
      plan.push_back(std::move(batch));
      batch.clear();
      longest = 0;
    }
    batch.push_back(i);
    longest = std::max(longest, l);
  }
  if (!batch.empty()) plan.push_back(std::move(batch));
  return plan;
}

AudioBatch AudioBatches::build(const BatchSlots& slots) const {
  const int64_t begin = slots.begin;
  std::vector<std::vector<float>> clips;
  for (int64_t k = 0; k < slots.n; ++k) {
    const int64_t idx = slots.indices[k];
    std::vector<float> s = data_->get(idx).samples;
    std::mt19937_64 rng(mix_seed(mix_seed(slots.seed, static_cast<uint64_t>(slots.epoch)), static_cast<uint64_t>(idx)));
    if (static_cast<int64_t>(s.size()) > o_.max_samples) {  // random crop (fairseq crop_to_max_size)
      const int64_t start = static_cast<int64_t>(rng() % static_cast<uint64_t>(s.size() - o_.max_samples + 1));
      s = std::vector<float>(s.begin() + start, s.begin() + start + o_.max_samples);
    }
    if (o_.normalize && !s.empty()) {
      double mean = 0, var = 0;
      for (float v : s) mean += v;
      mean /= static_cast<double>(s.size());
      for (float v : s) var += (v - mean) * (v - mean);
      const double sd = std::sqrt(var / static_cast<double>(s.size()) + 1e-5);
      for (float& v : s) v = static_cast<float>((v - mean) / sd);
    }
    clips.push_back(std::move(s));
  }
  size_t shortest = SIZE_MAX, longest = 0;
  for (const auto& c : clips) shortest = std::min(shortest, c.size()), longest = std::max(longest, c.size());
  const int64_t B = static_cast<int64_t>(clips.size());
  AudioBatch out;
  if (o_.pad) {
    out.source = torch::zeros({B, static_cast<int64_t>(longest)});
    out.padding_mask = torch::ones({B, static_cast<int64_t>(longest)}, torch::kBool);
    for (int64_t i = 0; i < B; ++i) {
      std::memcpy(out.source[i].data_ptr<float>(), clips[i].data(), clips[i].size() * sizeof(float));
      out.padding_mask[i].slice(0, 0, static_cast<int64_t>(clips[i].size())).fill_(false);
    }
  } else {  // crop every clip to the shortest, at a random offset (fairseq's default)
    out.source = torch::empty({B, static_cast<int64_t>(shortest)});
    out.padding_mask = torch::zeros({B, static_cast<int64_t>(shortest)}, torch::kBool);
    for (int64_t i = 0; i < B; ++i) {
      std::mt19937_64 rng(mix_seed(mix_seed(slots.seed + 1, static_cast<uint64_t>(slots.epoch)), static_cast<uint64_t>(begin + i)));
      const size_t start = clips[i].size() == shortest ? 0 : rng() % (clips[i].size() - shortest + 1);
      std::memcpy(out.source[i].data_ptr<float>(), clips[i].data() + start, shortest * sizeof(float));
    }
  }
  return out;
}

}  // namespace dyt
