// TensorBoard event files (core/tensorboard.h).
#include "core/tensorboard.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/errors.h"
#include "core/io.h"

namespace dyt {

namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli
    t[i] = c;
  }
  return t;
}

// Protobuf wire format, the three kinds used here.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void key(std::string& out, int field, int wire) { varint(out, static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire)); }
void bytes_field(std::string& out, int field, const std::string& v) {
  key(out, field, 2);
  varint(out, v.size());
  out += v;
}
void double_field(std::string& out, int field, double v) {
  key(out, field, 1);
  char b[8];
  std::memcpy(b, &v, 8);  // little-endian on every platform we build for
  out.append(b, 8);
}
void float_field(std::string& out, int field, float v) {
  key(out, field, 5);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

EventWriter::EventWriter(const std::filesystem::path& dir, int64_t start_step) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  const double t = now_s();
  path_ = dir / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(t)) + "." + host + "." +
                 std::to_string(::getpid()) + ".dyt");
  f_ = std::fopen(path_.c_str(), "wb");
  if (!f_) io_fail(path_, "creating the TensorBoard event file", errno);
  std::string ev;
  double_field(ev, 1, t);
  bytes_field(ev, 3, "brain.Event:2");
  record(ev);
  if (start_step >= 0) {
    std::string log, e;
    key(log, 1, 0);
    varint(log, 1);  // SessionLog.START
    double_field(e, 1, t);
    key(e, 2, 0);
    varint(e, static_cast<uint64_t>(start_step));
    bytes_field(e, 7, log);
    record(e);
  }
  flush();
}

EventWriter::~EventWriter() {
  if (f_) std::fclose(f_);
}

void EventWriter::record(const std::string& event) {
  char header[12];
  const uint64_t len = event.size();
  std::memcpy(header, &len, 8);
  const uint32_t len_crc = masked_crc32c(header, 8);
  std::memcpy(header + 8, &len_crc, 4);
  const uint32_t data_crc = masked_crc32c(event.data(), event.size());
  if (std::fwrite(header, 1, 12, f_) != 12 || std::fwrite(event.data(), 1, event.size(), f_) != event.size() ||
      std::fwrite(&data_crc, 1, 4, f_) != 4)
    io_fail(path_, "writing the TensorBoard event file", errno);
}

void EventWriter::scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  std::string v, s, e;
  bytes_field(v, 1, tag);
  float_field(v, 2, static_cast<float>(value));
  bytes_field(s, 1, v);
  double_field(e, 1, wall_time >= 0 ? wall_time : now_s());
  key(e, 2, 0);
  varint(e, static_cast<uint64_t>(step));
  bytes_field(e, 5, s);
  record(e);
}

void EventWriter::flush() {
  if (f_) std::fflush(f_);
}

}  // namespace dyt
