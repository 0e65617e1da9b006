// The machinery every loader shares: the order of samples in an epoch (seeded shuffle, sharded
// by rank as PyTorch's DistributedSampler: padded by wrapping, then every world-th sample) and a
// pool of worker threads that build batches ahead of the consumer and hand them out in order,
// rethrowing a worker's exception (e.g. a DataError) to the consumer.
//
// Two ways to share the work. Whole items: each worker builds one batch at a time (audio: a
// batch is a few crops). Parts (start_parts): a batch is allocated once and its samples are
// filled in `parts` slices by whichever workers are free, earliest batch first, so every worker
// helps with the batch the trainer waits for (images: 256 JPEGs of 4-5 ms each; with whole
// items the first batch would take 256 x 5 ms on one thread while the others start later ones).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace dyt {

// splitmix64: mixes seeds (per epoch, per sample) into independent generator seeds.
uint64_t mix_seed(uint64_t a, uint64_t b);

// Batches of `batch` in `samples` (a partial last batch counts unless drop_last).
inline int64_t batches_in(int64_t samples, int64_t batch, bool drop_last) {
  return drop_last ? samples / batch : (samples + batch - 1) / batch;
}

// Indices of one epoch for this rank: positions rank, rank + world, ... of the epoch's
// permutation (DistributedSampler's striding, so the ranks' b-th batches together are the b-th
// batch of world x batch_size samples of one process). pad: every rank gets ceil(n / world),
// wrapping around (training); otherwise the shards split the n samples exactly (evaluation).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle, int64_t rank, int64_t world,
                                 bool pad = true);

template <class T>
class Prefetcher {
 public:
  using Build = std::function<T(int64_t index)>;
  // Parts: `alloc` makes item `index` (its storage, unfilled); `fill` fills part p of `parts`
  // into it. Different parts of one item are filled concurrently: they must write disjoint data.
  using Alloc = std::function<T(int64_t index)>;
  using Fill = std::function<void(int64_t index, T& item, int64_t part, int64_t parts)>;

  Prefetcher(int64_t workers, int64_t prefetch) : workers_(workers), prefetch_(prefetch) {}
  ~Prefetcher() { stop(); }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Serves items first..end-1 from now on (stopping any previous round), each built whole.
  void start(int64_t first, int64_t end, Build build) { start_parts(first, end, std::move(build), nullptr, 1); }

  // The same, each item filled in `parts` parts by any free worker (earliest item first).
  void start_parts(int64_t first, int64_t end, Alloc alloc, Fill fill, int64_t parts) {
    stop();
    alloc_ = std::move(alloc);
    fill_ = std::move(fill);
    parts_ = fill_ ? std::max<int64_t>(1, parts) : 1;
    ready_.clear();
    pending_.clear();
    error_ = nullptr;
    next_out_ = next_build_ = first;
    next_part_ = 0;
    end_ = end;
    for (int64_t w = 0; w < workers_; ++w) threads_.emplace_back([this] { work(); });
  }

  // Stops the round in progress: workers finish the part they build and exit (joined here).
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    stopping_ = false;
  }

  // The next item in order, or false when the round is over.
  bool next(T& out) {
    if (next_out_ >= end_) return false;
    if (workers_ <= 0) {
      out = alloc_(next_out_);
      if (fill_)
        for (int64_t p = 0; p < parts_; ++p) fill_(next_out_, out, p, parts_);
      ++next_out_;
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

 private:
  struct Pending {
    T item;
    bool allocated = false;
    int64_t done = 0;
  };

  void work() {
    while (true) {
      int64_t i, p;
      Pending* slot = nullptr;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] {
          return stopping_ || error_ || next_build_ >= end_ || next_build_ < next_out_ + prefetch_;
        });
        if (stopping_ || error_ || next_build_ >= end_) return;
        i = next_build_, p = next_part_;
        if (++next_part_ == parts_) ++next_build_, next_part_ = 0;
        slot = &pending_[i];  // std::map: the reference stays valid until this entry is erased
        // The first part's worker allocates; the others wait for it (allocation is quick).
        if (p == 0) {
          lock.unlock();
          T item;
          try {
            item = alloc_(i);
          } catch (...) {
            lock.lock();
            if (!error_) error_ = std::current_exception();
            cv_.notify_all();
            return;
          }
          lock.lock();
          slot->item = std::move(item);
          slot->allocated = true;
          cv_.notify_all();
        } else {
          cv_.wait(lock, [&] { return stopping_ || error_ || slot->allocated; });
          if (stopping_ || error_) return;
        }
      }
      try {
        if (fill_) fill_(i, slot->item, p, parts_);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        cv_.notify_all();
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (++slot->done == parts_) {
          ready_.emplace(i, std::move(slot->item));
          pending_.erase(i);
        }
      }
      cv_.notify_all();
    }
  }

  int64_t workers_, prefetch_;
  Alloc alloc_;
  Fill fill_;
  int64_t parts_ = 1;
  int64_t next_out_ = 0, next_build_ = 0, next_part_ = 0, end_ = 0;
  std::map<int64_t, T> ready_;
  std::map<int64_t, Pending> pending_;
  std::exception_ptr error_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace dyt
