#include "datasets/loader.h"

#include <fmt/format.h>

namespace dyt {

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle, int64_t rank, int64_t world) {
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  if (shuffle) {  // Fisher-Yates with a fixed generator: the same order on every platform
    std::mt19937_64 rng(mix_seed(seed, static_cast<uint64_t>(epoch) + 1));
    for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1))]);
  }
  std::vector<int64_t> order;
  if (n == 0) return order;
  const int64_t per_rank = (n + world - 1) / world;
  for (int64_t k = 0; k < per_rank; ++k) order.push_back(perm[(k * world + rank) % n]);
  return order;
}

Loader::Loader(DatasetPtr data, std::shared_ptr<const ImageTransform> transform, LoaderOptions opts)
    : data_(std::move(data)), tf_(std::move(transform)), o_(opts), queue_(opts.workers, opts.prefetch) {
  if (o_.batch_size <= 0) throw std::invalid_argument("loader: batch size must be positive");
  if (data_->size() == 0) throw DataError(data_->describe() + ": the data set is empty");
}

int64_t Loader::batches_per_epoch() const {
  return batches_in(static_cast<int64_t>(order_.size()), o_.batch_size, o_.drop_last);
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  epoch_ = epoch;
  order_ = epoch_order(data_->size(), o_.seed, epoch, o_.shuffle, o_.rank, o_.world);
  if (o_.drop_last && static_cast<int64_t>(order_.size()) < o_.batch_size)
    throw DataError(fmt::format("{}: {} samples per rank is less than one batch of {}; lower data.batch_size",
                                data_->describe(), order_.size(), o_.batch_size));
  queue_.start(std::min(first_batch, batches_per_epoch()), batches_per_epoch(), [this](int64_t b) { return build(b); });
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

}  // namespace dyt
