// A caching allocator for LibTorch's large CPU tensors (at least 1 MiB).
//
// LibTorch's default CPU allocator is posix_memalign/free. For tensors of tens of MiB that costs a
// page fault per 4 KiB on every allocation: glibc either maps and unmaps them, or (with the mmap
// threshold raised) places each 64-byte-aligned request just past the block freed a moment ago,
// which is too small by the alignment slack, so the heap grows and the new pages fault in. On the
// development VM, `dyt bench norm` timed 4,000-47,000 page faults per call, and the clone that is
// the benchmark's bandwidth reference ran 3x slower than LayerNorm.
//
// Here large blocks are rounded up to 2 MiB, mapped 2 MiB-aligned with MADV_HUGEPAGE (transparent
// huge pages where the kernel allows them: one fault per 2 MiB), and on free kept in a cache keyed
// by size, from which the next request of that size (or up to a quarter more) is served without
// any system call. A training step allocates the same sizes every step, so after the first step
// it faults no more. The cache holds at most a quarter of physical memory (DYT_CPU_CACHE_MB sets
// it); blocks beyond that, and the whole cache when a new mapping fails, go back to the system.
// Smaller requests go to LibTorch's allocator unchanged. DYT_CPU_ALLOCATOR=system leaves
// LibTorch's allocator in place.
#pragma once

#include <c10/core/Allocator.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

namespace dyt {

class CachingCpuAllocator final : public c10::Allocator {
 public:
  static constexpr size_t kMinBytes = size_t(1) << 20;  // smaller requests go to `small`
  static constexpr size_t kGranule = size_t(2) << 20;   // sizes round up to this; blocks align to it

  CachingCpuAllocator(c10::Allocator* small, size_t cache_limit_bytes);
  ~CachingCpuAllocator() override;

  c10::DataPtr allocate(size_t n) override;
  // Every DataPtr's context is its data pointer (LibTorch's raw_allocate / raw_deallocate need
  // that); the deleter finds the block by its address.
  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::release; }
  void copy_data(void* dest, const void* src, std::size_t count) const override;

  struct Stats {
    int64_t maps = 0;      // blocks mapped from the system
    int64_t reuses = 0;    // requests served from the cache
    int64_t unmaps = 0;    // blocks returned to the system
    size_t mapped = 0;     // bytes mapped now (in use + cached)
    size_t cached = 0;     // bytes cached (free) now
  };
  Stats stats() const;
  // Returns every cached block to the system.
  void empty_cache();

 private:
  static void release(void* ptr);
  void give_back(void* ptr, size_t size);
  void unmap_locked(void* ptr, size_t size);
  void trim_locked(size_t limit);

  c10::Allocator* small_;
  size_t limit_;
  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;  // cached blocks by size
  Stats stats_;
};

// Installs one process-wide CachingCpuAllocator as LibTorch's CPU allocator (once; later calls
// return the same). Returns nullptr, leaving LibTorch's allocator, when DYT_CPU_ALLOCATOR=system
// and in AddressSanitizer builds (whose checks cover malloc'd memory only).
CachingCpuAllocator* install_cpu_caching_allocator();

}  // namespace dyt
