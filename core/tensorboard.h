// TensorBoard event files written by dyt itself (no TensorFlow, no protobuf library): the
// TFRecord framing (length, masked CRC-32C of the length, the record, masked CRC-32C of the
// record) around hand-encoded `Event` protos holding scalar summaries, as tensorboard's
// EventFileWriter writes them. `tensorboard --logdir results` reads them live, and `wandb sync`
// imports them.
//
// Only the fields used are encoded: Event {wall_time = 1 (double), step = 2 (int64),
// file_version = 3 (string), summary = 5, session_log = 7}; Summary {value = 1}; Summary.Value
// {tag = 1 (string), simple_value = 2 (float)}; SessionLog {status = 1 (START = 1)}.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace dyt {

// CRC-32C (Castagnoli), and TFRecord's masking of it: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);

class EventWriter {
 public:
  // Opens a new events.out.tfevents.<seconds>.<host>.<pid> file in `dir` (created if missing).
  // `start_step` >= 0 also writes SessionLog START at that step: TensorBoard then drops the points
  // an earlier (interrupted) writer left at or after it, so a resumed run shows one curve.
  explicit EventWriter(const std::filesystem::path& dir, int64_t start_step = -1);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  void scalar(const std::string& tag, double value, int64_t step, double wall_time = -1);
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  void record(const std::string& event);
  std::filesystem::path path_;
  std::FILE* f_ = nullptr;
};

}  // namespace dyt
