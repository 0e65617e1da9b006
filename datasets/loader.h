// Threaded, seeded batch loaders for every modality: one BatchLoader (order, sharding, prefetch,
// resume) over a BatchBuilder per modality (images here, audio in audio.h). Worker threads build
// batches ahead of the trainer (up to `prefetch` batches); batches come out in order. Image
// batches are built per sample: all workers fill slices of the earliest unfinished batch (a
// builder that fills in parts); audio batches are built whole. Sample i of epoch e always sees the
// same random transform (its generator is seeded from seed, epoch and i), so results do not
// depend on the number of workers, and a resumed run sees exactly the batches it would have.
// With world > 1 each rank reads its own shard (DistributedSampler's padding and striding for
// training; evaluation shards split the data exactly, no sample twice).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>

#include "datasets/dataset.h"
#include "datasets/prefetch.h"
#include "datasets/transforms.h"

namespace dyt {

// A fixed list of batches, each a list of sample indices, used instead of slices of batch_size
// from the epoch's order: token-budget batching (fairseq's batch_by_size). Every epoch shuffles
// the list (seeded by seed and epoch, as fairseq's epoch iterator does) and shards it by rank.
using BatchPlan = std::vector<std::vector<int64_t>>;

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = true;
  int64_t workers = 1;   // 0: build batches on the calling thread
  int64_t prefetch = 4;  // batches built ahead
  bool pin_memory = false;  // batches in page-locked host memory (CUDA training: asynchronous copies)
  uint64_t seed = 0;
  int64_t rank = 0, world = 1;
  bool pad_shards = true;  // equal shards by wrapping around (training); false: exact split (evaluation)
  std::shared_ptr<const BatchPlan> plan;  // set: these batches instead of batch_size slices
};

// The samples of one batch, for a BatchBuilder: their indices in the data set in batch order,
// where the batch starts in the epoch's order, and the seed and epoch that per-sample random
// choices draw from (mix_seed(mix_seed(seed, epoch), index)).
struct BatchSlots {
  const int64_t* indices = nullptr;
  int64_t n = 0, begin = 0;
  uint64_t seed = 0;
  int64_t epoch = 0;
};

// What differs between modalities: how many samples there are, and how a batch is built from
// its samples (transform + collate). The loader owns everything else.
template <class BatchT>
class BatchBuilder {
 public:
  virtual ~BatchBuilder() = default;
  virtual int64_t size() const = 0;
  virtual std::string describe() const = 0;
  virtual std::string unit() const { return "samples"; }  // in messages: "utterances", ...
  virtual BatchT build(const BatchSlots& s) const = 0;
  // Builders whose samples are independent may fill a batch in parts: `allocate` makes its
  // storage, `fill` its samples k0..k1-1 (parts of one batch are filled concurrently).
  virtual bool fills_in_parts() const { return false; }
  virtual BatchT allocate(const BatchSlots& s) const { return build(s); }
  virtual void fill(const BatchSlots& /*s*/, BatchT& /*out*/, int64_t /*k0*/, int64_t /*k1*/) const {}
};

// Slices per batch when a batch is filled in parts: about four per worker (JPEGs differ in cost,
// so smaller slices balance the workers), at least one sample each.
inline int64_t parts_per_batch(int64_t batch, int64_t workers) {
  return std::max<int64_t>(1, std::min<int64_t>(batch, 4 * std::max<int64_t>(1, workers)));
}

// data.workers = -1 (auto): with a GPU, the node's cores shared among its processes
// (LOCAL_WORLD_SIZE), less one each for the training thread; on the CPU, 1 (the trainer's
// threads use the cores).
inline int64_t auto_loader_workers(bool cuda, int64_t cores, int64_t local_world) {
  if (!cuda) return 1;
  return std::max<int64_t>(1, cores / std::max<int64_t>(1, local_world) - 1);
}

// The one loader contract, for every modality: epoch order (seeded shuffle, sharded by rank),
// batches built ahead by worker threads and served in order, resume at any batch. BatchT has an
// `index` member (the batch's number within the epoch), which the loader fills.
template <class BatchT>
class BatchLoader {
 public:
  BatchLoader(std::shared_ptr<const BatchBuilder<BatchT>> builder, LoaderOptions o)
      : builder_(std::move(builder)), o_(o), queue_(o.workers, o.prefetch) {
    if (o_.batch_size <= 0 && !o_.plan) throw std::invalid_argument("loader: batch size must be positive");
    if (builder_->size() == 0) throw DataError(builder_->describe() + ": the data set is empty");
  }
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Starts an epoch (reshuffles); `first_batch` skips batches already consumed (resume).
  void start_epoch(int64_t epoch, int64_t first_batch = 0) {
    // Workers of the previous round read order_ and epoch_: stop them before changing either.
    queue_.stop();
    epoch_ = epoch;
    if (o_.plan) {  // this rank's share of the epoch's shuffled batches
      order_ = epoch_order(static_cast<int64_t>(o_.plan->size()), o_.seed, epoch, o_.shuffle, o_.rank, o_.world,
                           o_.pad_shards);
      serve(first_batch);
      return;
    }
    order_ = epoch_order(builder_->size(), o_.seed, epoch, o_.shuffle, o_.rank, o_.world, o_.pad_shards);
    if (o_.drop_last && static_cast<int64_t>(order_.size()) < o_.batch_size)
      throw DataError(builder_->describe() + ": " + std::to_string(order_.size()) + " " + builder_->unit() +
                      " per rank is less than one batch of " + std::to_string(o_.batch_size) +
                      "; lower data.batch_size");
    serve(first_batch);
  }
  // The next batch of the epoch, or false at its end. Rethrows a worker's error (e.g. DataError).
  bool next(BatchT& out) { return queue_.next(out); }
  int64_t batches_per_epoch() const {
    if (o_.plan) return static_cast<int64_t>(order_.size());
    return batches_in(static_cast<int64_t>(order_.size()), o_.batch_size, o_.drop_last);
  }
  int64_t samples_per_epoch() const {
    if (!o_.plan) return static_cast<int64_t>(order_.size());
    int64_t n = 0;
    for (int64_t b : order_) n += static_cast<int64_t>((*o_.plan)[b].size());
    return n;
  }

 private:
  void serve(int64_t first_batch) {
    const int64_t first = std::min(first_batch, batches_per_epoch());
    if (!builder_->fills_in_parts()) {
      queue_.start(first, batches_per_epoch(), [this](int64_t b) { return build(b); });
      return;
    }
    int64_t largest = o_.batch_size;
    if (o_.plan)
      for (const auto& batch : *o_.plan) largest = std::max<int64_t>(largest, static_cast<int64_t>(batch.size()));
    queue_.start_parts(
        first, batches_per_epoch(),
        [this](int64_t b) {
          BatchT out = builder_->allocate(slots(b));
          out.index = b;
          return out;
        },
        [this](int64_t b, BatchT& out, int64_t part, int64_t parts) {
          const BatchSlots s = slots(b);
          builder_->fill(s, out, s.n * part / parts, s.n * (part + 1) / parts);
        },
        parts_per_batch(largest, o_.workers));
  }
  BatchSlots slots(int64_t b) const {
    if (o_.plan) {
      const std::vector<int64_t>& idx = (*o_.plan)[order_[b]];
      return BatchSlots{idx.data(), static_cast<int64_t>(idx.size()), 0, o_.seed, epoch_};
    }
    const int64_t begin = b * o_.batch_size;
    const int64_t end = std::min<int64_t>(begin + o_.batch_size, static_cast<int64_t>(order_.size()));
    return BatchSlots{order_.data() + begin, end - begin, begin, o_.seed, epoch_};
  }
  BatchT build(int64_t b) const {
    BatchT out = builder_->build(slots(b));
    out.index = b;
    return out;
  }

  std::shared_ptr<const BatchBuilder<BatchT>> builder_;
  LoaderOptions o_;
  std::vector<int64_t> order_;
  int64_t epoch_ = 0;
  Prefetcher<BatchT> queue_;
};

// ---- images ------------------------------------------------------------------------------------------
struct Batch {
  torch::Tensor images;  // [B, C, S, S] float32
  torch::Tensor labels;  // [B] int64
  int64_t index = 0;     // batch number within the epoch
};

// Images through a per-sample transform (its generator seeded per sample), stacked.
class ImageBatches : public BatchBuilder<Batch> {
 public:
  ImageBatches(DatasetPtr data, std::shared_ptr<const ImageTransform> transform, bool pin_memory = false)
      : data_(std::move(data)), tf_(std::move(transform)), pin_(pin_memory) {}
  int64_t size() const override { return data_->size(); }
  std::string describe() const override { return data_->describe(); }
  Batch build(const BatchSlots& s) const override;
  bool fills_in_parts() const override { return true; }
  Batch allocate(const BatchSlots& s) const override;
  void fill(const BatchSlots& s, Batch& out, int64_t k0, int64_t k1) const override;

 private:
  DatasetPtr data_;
  std::shared_ptr<const ImageTransform> tf_;
  bool pin_;
};

class Loader : public BatchLoader<Batch> {
 public:
  Loader(DatasetPtr data, std::shared_ptr<const ImageTransform> transform, LoaderOptions opts)
      : BatchLoader<Batch>(std::make_shared<ImageBatches>(std::move(data), std::move(transform), opts.pin_memory), opts) {}
};

}  // namespace dyt
