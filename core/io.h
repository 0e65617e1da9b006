// Files the runner writes: atomic replacement (temp, fsync, rename), JSON lines, safetensors,
// and the per-run lock. A failed write (disk full, quota) raises IoError naming the file, and
// never leaves a half-written file behind under the real name.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/errors.h"

namespace dyt {

void atomic_write(const std::filesystem::path& path, const std::string& bytes);
void atomic_write_json(const std::filesystem::path& path, const nlohmann::json& j);
std::string read_text(const std::filesystem::path& path);
nlohmann::json read_json(const std::filesystem::path& path);

// Appends one JSON object per line; `sync` forces it to disk.
// Throws the IoError of a failed file operation: the file, what failed, the system's reason, and
// the fix for a full disk or an unwritable folder.
[[noreturn]] void io_fail(const std::filesystem::path& path, const char* what, int err);

void append_jsonl(const std::filesystem::path& path, const nlohmann::json& j, bool sync = false);
// All objects of a JSON-lines file (a torn last line, from a crash, is ignored).
std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path);

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
};
// safetensors: 8-byte little-endian header length, JSON header, raw little-endian data.
void write_safetensors(const std::filesystem::path& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
struct SafeTensorsFile {
  std::vector<NamedTensor> tensors;  // in file order
  std::map<std::string, std::string> metadata;
  const torch::Tensor* find(const std::string& name) const;
};
SafeTensorsFile read_safetensors(const std::filesystem::path& path);

// An exclusive advisory lock on a run folder (flock on <dir>/.lock), released on destruction
// or when the process dies, so a killed run never leaves a stale lock.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  bool held() const { return fd_ >= 0; }
  // Waits until the lock is free; returns false on timeout.
  bool wait(double seconds);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace dyt
