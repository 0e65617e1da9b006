// Atomic file writes, JSON lines, safetensors and run locks (core/io.h).
#include "core/io.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;

[[noreturn]] void io_fail(const fs::path& path, const char* what, int err) {
  std::string hint;
  if (err == ENOSPC || err == EDQUOT || err == EFBIG)
    hint = "; the disk (or quota / file-size limit) is full: free space and rerun `dyt run` - finished runs and "
           "checkpoints already written are kept";
  else if (err == EACCES || err == EROFS)
    hint = "; choose a writable results folder with --out";
  throw IoError(fmt::format("{}: {} failed: {}{}", path.string(), what, std::strerror(err), hint));
}

namespace {

// Writes everything or returns the errno of the failure (0 on success).
int write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += w, n -= static_cast<size_t>(w);
  }
  return 0;
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

const char* st_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return "F32";
    case torch::kDouble: return "F64";
    case torch::kHalf: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kLong: return "I64";
    case torch::kInt: return "I32";
    case torch::kShort: return "I16";
    case torch::kChar: return "I8";
    case torch::kByte: return "U8";
    case torch::kBool: return "BOOL";
    default: throw std::invalid_argument(std::string("safetensors: unsupported dtype ") + c10::toString(t));
  }
}

torch::ScalarType st_scalar(const std::string& s, const fs::path& path) {
  static const std::map<std::string, torch::ScalarType> m{
      {"F32", torch::kFloat}, {"F64", torch::kDouble}, {"F16", torch::kHalf}, {"BF16", torch::kBFloat16},
      {"I64", torch::kLong},  {"I32", torch::kInt},    {"I16", torch::kShort}, {"I8", torch::kChar},
      {"U8", torch::kByte},   {"BOOL", torch::kBool}};
  auto it = m.find(s);
  if (it == m.end()) throw IoError(fmt::format("{}: unsupported safetensors dtype '{}'", path.string(), s));
  return it->second;
}

}  // namespace

void atomic_write(const fs::path& path, const std::string& bytes) {
  const fs::path dir = path.parent_path();
  std::error_code ec;
  if (!dir.empty()) fs::create_directories(dir, ec);
  if (ec) io_fail(dir, "creating the folder", ec.value());
  const fs::path tmp = path.string() + fmt::format(".tmp{}", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_fail(tmp, "creating", errno);
  if (int err = write_all(fd, bytes.data(), bytes.size())) {
    ::close(fd);
    ::unlink(tmp.c_str());
    io_fail(path, "writing", err);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    io_fail(path, "syncing", err);
  }
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    io_fail(path, "closing", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    io_fail(path, "renaming into place", err);
  }
  fsync_dir(dir);
}

void atomic_write_json(const fs::path& path, const json& j) { atomic_write(path, j.dump(2) + "\n"); }

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open for reading", path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const fs::path& path) {
  try {
    return json::parse(read_text(path));
  } catch (const json::parse_error& e) {
    throw IoError(fmt::format("{}: not valid JSON ({}); delete the file or the run folder to recompute it",
                              path.string(), e.what()));
  }
}

void append_jsonl(const fs::path& path, const json& j, bool sync) {
  const std::string line = j.dump() + "\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) io_fail(path, "opening for append", errno);
  if (int err = write_all(fd, line.data(), line.size())) {
    ::close(fd);
    io_fail(path, "appending", err);
  }
  if (sync) ::fdatasync(fd);
  ::close(fd);
}

std::vector<json> read_jsonl(const fs::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::parse_error&) {
      // a torn final line from a crash; everything before it is intact
    }
  }
  return out;
}

void write_safetensors(const fs::path& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> cpu;
  int64_t offset = 0;
  for (const auto& nt : tensors) {
    torch::Tensor t = nt.tensor.detach().to(torch::kCPU).contiguous();
    const int64_t nbytes = static_cast<int64_t>(t.nbytes());
    header[nt.name] = {{"dtype", st_dtype(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    cpu.push_back(t);
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  std::string bytes;
  bytes.reserve(8 + h.size() + static_cast<size_t>(offset));
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((n >> (8 * i)) & 0xff);
  bytes += h;
  for (const auto& t : cpu) bytes.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  atomic_write(path, bytes);
}

const torch::Tensor* SafeTensorsFile::find(const std::string& name) const {
  for (const auto& nt : tensors)
    if (nt.name == name) return &nt.tensor;
  return nullptr;
}

SafeTensorsFile read_safetensors(const fs::path& path) {
  const std::string bytes = read_text(path);
  auto bad = [&](const std::string& why) {
    return IoError(fmt::format("{}: not a valid safetensors file ({}); delete it to start over", path.string(), why));
  };
  if (bytes.size() < 8) throw bad("shorter than its 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  if (n > bytes.size() - 8) throw bad("header length beyond the end of the file");
  json header;
  try {
    header = json::parse(bytes.substr(8, n));
  } catch (const json::parse_error& e) {
    throw bad(std::string("header is not JSON: ") + e.what());
  }
  const size_t base = 8 + n;
  SafeTensorsFile f;
  std::vector<std::pair<int64_t, NamedTensor>> items;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      for (auto m = it.value().begin(); m != it.value().end(); ++m) f.metadata[m.key()] = m.value().get<std::string>();
      continue;
    }
    const json& e = it.value();
    auto dtype = st_scalar(e.at("dtype").get<std::string>(), path);
    std::vector<int64_t> shape = e.at("shape").get<std::vector<int64_t>>();
    int64_t begin = e.at("data_offsets")[0].get<int64_t>(), end = e.at("data_offsets")[1].get<int64_t>();
    if (begin < 0 || end < begin || base + static_cast<size_t>(end) > bytes.size()) throw bad("tensor '" + it.key() + "' lies outside the file (truncated?)");
    torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    if (static_cast<int64_t>(t.nbytes()) != end - begin) throw bad("tensor '" + it.key() + "' has the wrong byte size");
    std::memcpy(t.data_ptr(), bytes.data() + base + begin, t.nbytes());
    items.push_back({begin, {it.key(), t}});
  }
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [off, nt] : items) f.tensors.push_back(std::move(nt));
  return f;
}

RunLock::RunLock(const fs::path& dir) : path_(dir / ".lock") {
  std::error_code ec;
  fs::create_directories(dir, ec);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) io_fail(path_, "creating the lock file", errno);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

bool RunLock::wait(double seconds) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!held()) {
    int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      fd_ = fd;
      return true;
    }
    if (fd >= 0) ::close(fd);
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return true;
}

RunLock::~RunLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

}  // namespace dyt
