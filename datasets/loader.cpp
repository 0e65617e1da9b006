#include "datasets/loader.h"

#include <fmt/format.h>

namespace dyt {

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

Loader::Loader(DatasetPtr data, std::shared_ptr<const ImageTransform> transform, LoaderOptions opts)
    : data_(std::move(data)), tf_(std::move(transform)), o_(opts) {
  if (o_.batch_size <= 0) throw std::invalid_argument("loader: batch size must be positive");
  if (data_->size() == 0) throw DataError(data_->describe() + ": the data set is empty");
}

Loader::~Loader() { stop_workers(); }

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  stopping_ = false;
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = static_cast<int64_t>(order_.size());
  return o_.drop_last ? n / o_.batch_size : (n + o_.batch_size - 1) / o_.batch_size;
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  stop_workers();
  epoch_ = epoch;
  const int64_t n = data_->size();
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  if (o_.shuffle) {  // Fisher-Yates with a fixed generator: the same order on every platform
    std::mt19937_64 rng(mix_seed(o_.seed, static_cast<uint64_t>(epoch) + 1));
    for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1))]);
  }
  // Shard: pad to a multiple of world by wrapping around, then take every world-th sample.
  const int64_t per_rank = (n + o_.world - 1) / o_.world;
  order_.clear();
  for (int64_t k = 0; k < per_rank; ++k) order_.push_back(perm[(k * o_.world + o_.rank) % n]);
  if (o_.drop_last && static_cast<int64_t>(order_.size()) < o_.batch_size)
    throw DataError(fmt::format("{}: {} samples per rank is less than one batch of {}; lower data.batch_size",
                                data_->describe(), order_.size(), o_.batch_size));
  ready_.clear();
  error_ = nullptr;
  next_out_ = next_build_ = std::min(first_batch, batches_per_epoch());
  end_ = batches_per_epoch();
  for (int64_t w = 0; w < o_.workers; ++w) threads_.emplace_back([this] { worker_loop(); });
}

Batch Loader::build(int64_t b) const {
  const int64_t begin = b * o_.batch_size;
  const int64_t end = std::min<int64_t>(begin + o_.batch_size, static_cast<int64_t>(order_.size()));
  const int64_t B = end - begin, C = tf_->channels(), S = tf_->out_size();
  Batch out;
  out.index = b;
  out.images = torch::empty({B, C, S, S}, torch::kFloat);
  out.labels = torch::empty({B}, torch::kLong);
  float* img = out.images.data_ptr<float>();
  int64_t* lab = out.labels.data_ptr<int64_t>();
  for (int64_t k = 0; k < B; ++k) {
    const int64_t idx = order_[begin + k];
    ImageSample s = data_->get(idx);
    std::mt19937_64 rng(mix_seed(mix_seed(o_.seed, static_cast<uint64_t>(epoch_)), static_cast<uint64_t>(idx)));
    (*tf_)(s.image, rng, img + k * C * S * S);
    lab[k] = s.label;
  }
  return out;
}

void Loader::worker_loop() {
  while (true) {
    int64_t b;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || error_ || next_build_ >= end_ || next_build_ < next_out_ + o_.prefetch; });
      if (stopping_ || error_ || next_build_ >= end_) return;
      b = next_build_++;
    }
    try {
      Batch batch = build(b);
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace(b, std::move(batch));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
    }
    cv_.notify_all();
  }
}

bool Loader::next(Batch& out) {
  if (next_out_ >= end_) return false;
  if (o_.workers <= 0) {
    out = build(next_out_++);
    return true;
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return error_ || ready_.count(next_out_); });
  if (error_) std::rethrow_exception(error_);
  auto it = ready_.find(next_out_);
  out = std::move(it->second);
  ready_.erase(it);
  ++next_out_;
  lock.unlock();
  cv_.notify_all();
  return true;
}

}  // namespace dyt
