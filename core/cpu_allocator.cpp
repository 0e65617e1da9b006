#include "core/cpu_allocator.h"

#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace dyt {
namespace {

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

// A 2 MiB-aligned anonymous mapping of `bytes` (a multiple of 2 MiB), or nullptr.
void* map_aligned(size_t bytes) {
  const size_t g = CachingCpuAllocator::kGranule;
  void* raw = ::mmap(nullptr, bytes + g, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + g - 1) / g * g;
  if (aligned > start) ::munmap(raw, aligned - start);
  const uintptr_t end = start + bytes + g, used_end = aligned + bytes;
  if (end > used_end) ::munmap(reinterpret_cast<void*>(used_end), end - used_end);
#ifdef MADV_HUGEPAGE
  ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);  // advice only: may be refused
#endif
  return reinterpret_cast<void*>(aligned);
}

}  // namespace

CachingCpuAllocator::CachingCpuAllocator(c10::Allocator* small, size_t cache_limit_bytes)
    : small_(small), limit_(cache_limit_bytes) {}

CachingCpuAllocator::~CachingCpuAllocator() { empty_cache(); }

c10::DataPtr CachingCpuAllocator::allocate(size_t n) {
  if (n < kMinBytes) return small_->allocate(n);
  const size_t size = round_up(n, kGranule);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.lower_bound(size);
    if (it != free_.end() && it->first <= size + size / 4) {
      Block* b = it->second;
      free_.erase(it);
      stats_.cached -= b->size;
      ++stats_.reuses;
      return {b->ptr, b, &CachingCpuAllocator::release, c10::Device(c10::DeviceType::CPU)};
    }
  }
  void* p = map_aligned(size);
  if (!p) {  // out of address space or memory: give the cache back and try once more
    empty_cache();
    p = map_aligned(size);
  }
  TORCH_CHECK(p, "dyt: out of memory: could not map ", size >> 20, " MiB for a CPU tensor (", std::strerror(errno),
              "); a smaller batch size needs less");
  auto* b = new Block{p, size, this};
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.maps;
  stats_.mapped += size;
  return {p, b, &CachingCpuAllocator::release, c10::Device(c10::DeviceType::CPU)};
}

void CachingCpuAllocator::copy_data(void* dest, const void* src, std::size_t count) const {
  if (count) std::memcpy(dest, src, count);
}

void CachingCpuAllocator::release(void* ctx) {
  auto* b = static_cast<Block*>(ctx);
  b->owner->give_back(b);
}

void CachingCpuAllocator::give_back(Block* b) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.emplace(b->size, b);
  stats_.cached += b->size;
  trim_locked(limit_);
}

void CachingCpuAllocator::unmap_locked(Block* b) {
  ::munmap(b->ptr, b->size);
  stats_.mapped -= b->size;
  ++stats_.unmaps;
  delete b;
}

// Unmaps the largest cached blocks until at most `limit` bytes stay cached.
void CachingCpuAllocator::trim_locked(size_t limit) {
  while (stats_.cached > limit && !free_.empty()) {
    auto it = std::prev(free_.end());
    Block* b = it->second;
    free_.erase(it);
    stats_.cached -= b->size;
    unmap_locked(b);
  }
}

void CachingCpuAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  trim_locked(0);
}

CachingCpuAllocator::Stats CachingCpuAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

CachingCpuAllocator* install_cpu_caching_allocator() {
  static CachingCpuAllocator* installed = []() -> CachingCpuAllocator* {
    const char* mode = std::getenv("DYT_CPU_ALLOCATOR");
    if (mode && std::string(mode) == "system") return nullptr;
    size_t limit = static_cast<size_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(::sysconf(_SC_PAGESIZE)) / 4;
    if (const char* mb = std::getenv("DYT_CPU_CACHE_MB")) limit = static_cast<size_t>(std::strtoull(mb, nullptr, 10)) << 20;
    // Never destroyed: tensors that outlive main() still hand their blocks back to it.
    auto* a = new CachingCpuAllocator(c10::GetAllocator(c10::DeviceType::CPU), limit);
    c10::SetAllocator(c10::DeviceType::CPU, a, /*priority=*/10);
    return a;
  }();
  return installed;
}

}  // namespace dyt
