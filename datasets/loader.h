// Threaded, seeded batch loader. Worker threads build whole batches ahead of the trainer
// (up to `prefetch` batches); batches come out in order. Sample i of epoch e always sees the
// same random transform (its generator is seeded from seed, epoch and i), so results do not
// depend on the number of workers, and a resumed run sees exactly the batches it would have.
// With world > 1 each rank reads its own shard (DistributedSampler's padding and striding).
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "datasets/dataset.h"
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
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts an epoch (reshuffles); `first_batch` skips batches already consumed (resume).
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch, or false at its end. Rethrows a worker's error (e.g. DataError).
  bool next(Batch& out);
  int64_t batches_per_epoch() const;
  int64_t samples_per_epoch() const { return static_cast<int64_t>(order_.size()); }

 private:
  void stop_workers();
  Batch build(int64_t b) const;
  void worker_loop();

  DatasetPtr data_;
  std::shared_ptr<const ImageTransform> tf_;
  LoaderOptions o_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0;
  int64_t next_out_ = 0, next_build_ = 0, end_ = 0;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// splitmix64: the per-sample seed mixer.
uint64_t mix_seed(uint64_t a, uint64_t b);

}  // namespace dyt
