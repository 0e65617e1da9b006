// Threaded, seeded batch loader. Worker threads build whole batches ahead of the trainer
// (up to `prefetch` batches); batches come out in order. Sample i of epoch e always sees the
// same random transform (its generator is seeded from seed, epoch and i), so results do not
// depend on the number of workers, and a resumed run sees exactly the batches it would have.
// With world > 1 each rank reads its own shard (DistributedSampler's padding and striding).
#pragma once

#include <torch/torch.h>

#include <memory>

#include "datasets/dataset.h"
#include "datasets/prefetch.h"
#include "datasets/transforms.h"

namespace dyt {

struct Batch {
  torch::Tensor images;  // [B, C, S, S] float32
  torch::Tensor labels;  // [B] int64
  int64_t index = 0;     // batch number within the epoch
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = true;
  int64_t workers = 1;   // 0: build batches on the calling thread
  int64_t prefetch = 4;  // batches built ahead
  uint64_t seed = 0;
  int64_t rank = 0, world = 1;
};

class Loader {
 public:
  Loader(DatasetPtr data, std::shared_ptr<const ImageTransform> transform, LoaderOptions opts);
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts an epoch (reshuffles); `first_batch` skips batches already consumed (resume).
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch, or false at its end. Rethrows a worker's error (e.g. DataError).
  bool next(Batch& out) { return queue_.next(out); }
  int64_t batches_per_epoch() const;
  int64_t samples_per_epoch() const { return static_cast<int64_t>(order_.size()); }

 private:
  Batch build(int64_t b) const;

  DatasetPtr data_;
  std::shared_ptr<const ImageTransform> tf_;
  LoaderOptions o_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0;
  Prefetcher<Batch> queue_;
};

}  // namespace dyt
