#include "core/cpu_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

namespace dyt {
namespace {

// Blocks handed out, by address, across all instances: the deleter gets only the address.
struct Live {
  CachingCpuAllocator* owner;
  size_t size;
};
std::mutex& live_mutex() {
  static auto* m = new std::mutex;
  return *m;
}
std::unordered_map<void*, Live>& live() {
  static auto* m = new std::unordered_map<void*, Live>;  // never destroyed: frees may come after main
  return *m;
}

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
      const size_t got = it->first;
      void* p = it->second;
      free_.erase(it);
      stats_.cached -= got;
      ++stats_.reuses;
      std::lock_guard<std::mutex> l2(live_mutex());
      live()[p] = Live{this, got};
      return {p, p, &CachingCpuAllocator::release, c10::Device(c10::DeviceType::CPU)};
    }
  }
  void* p = map_aligned(size);
  if (!p) {  // out of address space or memory: give the cache back and try once more
    empty_cache();
    p = map_aligned(size);
  }
  TORCH_CHECK(p, "dyt: out of memory: could not map ", size >> 20, " MiB for a CPU tensor (", std::strerror(errno),
              "); a smaller batch size needs less");
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.maps;
    stats_.mapped += size;
  }
  {
    std::lock_guard<std::mutex> l2(live_mutex());
    live()[p] = Live{this, size};
  }
  return {p, p, &CachingCpuAllocator::release, c10::Device(c10::DeviceType::CPU)};
}

void CachingCpuAllocator::copy_data(void* dest, const void* src, std::size_t count) const {
  if (count) std::memcpy(dest, src, count);
}

// The deleter of our DataPtrs, and raw_deleter(): also reached through raw_deallocate with a
// pointer of the small allocator, which goes back to that allocator's own raw deleter.
void CachingCpuAllocator::release(void* ptr) {
  if (!ptr) return;
  Live l{};
  {
    std::lock_guard<std::mutex> l2(live_mutex());
    auto it = live().find(ptr);
    if (it != live().end()) {
      l = it->second;
      live().erase(it);
    }
  }
  if (l.owner) {
    l.owner->give_back(ptr, l.size);
    return;
  }
  // Not ours: a small block of the fallback (only raw_deallocate can route one here).
  c10::DeleterFnPtr d = c10::GetDefaultCPUAllocator()->raw_deleter();
  TORCH_CHECK(d, "dyt: cannot free ", ptr, ": not a block of the caching CPU allocator");
  d(ptr);
}

void CachingCpuAllocator::give_back(void* ptr, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.emplace(size, ptr);
  stats_.cached += size;
  trim_locked(limit_);
}

void CachingCpuAllocator::unmap_locked(void* ptr, size_t size) {
  ::munmap(ptr, size);
  stats_.mapped -= size;
  ++stats_.unmaps;
}

// Unmaps the largest cached blocks until at most `limit` bytes stay cached.
void CachingCpuAllocator::trim_locked(size_t limit) {
  while (stats_.cached > limit && !free_.empty()) {
    auto it = std::prev(free_.end());
    const size_t size = it->first;
    void* p = it->second;
    free_.erase(it);
    stats_.cached -= size;
    unmap_locked(p, size);
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
#if defined(__SANITIZE_ADDRESS__)
    return nullptr;  // AddressSanitizer checks malloc'd memory only: keep every tensor there
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return nullptr;
#endif
#endif
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
