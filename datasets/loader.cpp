// The loaders' shared pieces (epoch order, seed mixing) and the image batch builder (loader.h).
#include "datasets/loader.h"

#include <fmt/format.h>

namespace dyt {

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle, int64_t rank, int64_t world,
                                 bool pad) {
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  if (shuffle) {  // Fisher-Yates with a fixed generator: the same order on every platform
    std::mt19937_64 rng(mix_seed(seed, static_cast<uint64_t>(epoch) + 1));
    for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1))]);
  }
  std::vector<int64_t> order;
  if (n == 0) return order;
  const int64_t per_rank = (n + world - 1) / world;
  for (int64_t k = 0; k < per_rank; ++k) {
    if (!pad && k * world + rank >= n) break;
    order.push_back(perm[(k * world + rank) % n]);
  }
  return order;
}

Batch ImageBatches::allocate(const BatchSlots& s) const {
  const int64_t B = s.n, C = tf_->channels(), S = tf_->out_size();
  Batch out;
  out.images = torch::empty({B, C, S, S}, torch::TensorOptions(torch::kFloat).pinned_memory(pin_));
  out.labels = torch::empty({B}, torch::TensorOptions(torch::kLong).pinned_memory(pin_));
  return out;
}

void ImageBatches::fill(const BatchSlots& s, Batch& out, int64_t k0, int64_t k1) const {
  const int64_t C = tf_->channels(), S = tf_->out_size();
  float* img = out.images.data_ptr<float>();
  int64_t* lab = out.labels.data_ptr<int64_t>();
  for (int64_t k = k0; k < k1; ++k) {
    const int64_t idx = s.indices[k];
    std::mt19937_64 rng(mix_seed(mix_seed(s.seed, static_cast<uint64_t>(s.epoch)), static_cast<uint64_t>(idx)));
    float* dst = img + k * C * S * S;
    EncodedSample enc;
    if (tf_->crops_before_decoding() && data_->encoded(idx, enc)) {  // decode only the crop's region
      if (!tf_->from_jpeg(enc.bytes, enc.path, rng, dst)) (*tf_)(decode_rgb_image(enc.bytes, enc.path), rng, dst);
      lab[k] = enc.label;
      continue;
    }
    ImageSample sample = data_->get(idx);
    (*tf_)(sample.image, rng, dst);
    lab[k] = sample.label;
  }
}

Batch ImageBatches::build(const BatchSlots& s) const {
  Batch out = allocate(s);
  fill(s, out, 0, s.n);
  return out;
}

}  // namespace dyt
