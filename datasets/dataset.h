// Image classification data sets: readers for the formats researchers have on disk.
//   idx          MNIST / Fashion-MNIST (train-images-idx3-ubyte[.gz], t10k-*), gz or raw
//   cifar10/100  the CIFAR binary versions (data_batch_N.bin / test_batch.bin; train.bin / test.bin)
//   image_folder ImageNet-style trees root/<split>/<class>/<image>, decoded with OpenCV
//   synthetic    generated class-dependent patterns, for tests and benchmarks
// Readers validate sizes up front and raise DataError naming the file and the fix, so a
// truncated download fails at open time, not hours into a run. No LibTorch here.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/registry.h"

namespace dyt {

class AudioDataset;  // datasets/audio.h

struct ImageSample {
  cv::Mat image;  // HxWxC uint8, RGB order for colour
  int64_t label = 0;
};

// A sample still encoded (the file's bytes), for decoders that read only part of an image.
struct EncodedSample {
  std::vector<uint8_t> bytes;
  int64_t label = 0;
  std::string path;  // for messages
};

class ImageDataset {
 public:
  virtual ~ImageDataset() = default;
  virtual int64_t size() const = 0;
  virtual ImageSample get(int64_t index) const = 0;  // thread-safe
  // The sample's encoded bytes when the data set stores files (image folders); false otherwise.
  virtual bool encoded(int64_t /*index*/, EncodedSample& /*out*/) const { return false; }
  virtual int64_t num_classes() const = 0;
  virtual int64_t channels() const = 0;
  virtual int64_t native_size() const = 0;  // side of the stored images, 0 if they vary
  virtual std::string describe() const = 0;
};
using DatasetPtr = std::shared_ptr<const ImageDataset>;

struct DatasetRequest {
  std::string root;           // "" = the type's default root
  std::string split;          // "train" or "val"
  // audio only: the split's manifest file under root, utterances shorter than min_samples dropped
  std::string manifest;
  int64_t min_samples = 0;
  // synthetic only
  int64_t synthetic_size = 1024, synthetic_classes = 10, synthetic_image = 32, synthetic_channels = 3;
  uint64_t seed = 0;
};

struct DatasetType {
  std::string help;
  std::string default_root;   // "" = none; the user must give data.root
  std::vector<double> mean, std;  // normalisation defaults
  std::function<DatasetPtr(const DatasetRequest&)> open;                             // image sets
  std::function<std::shared_ptr<const AudioDataset>(const DatasetRequest&)> open_audio;  // audio sets
  std::string kind = "image";  // image | audio: which of open / open_audio the type has
  // The second split is a test set (MNIST, Fashion-MNIST, CIFAR publish train/test only): by
  // default a run then validates on a held-out part of the training set (data.holdout) and
  // measures the test set once, after training.
  bool val_is_test = false;
};

const Registry<DatasetType>& dataset_registry();

// A view of the first `n` samples of a data set (n <= 0: all of them).
DatasetPtr subset(DatasetPtr base, int64_t n);
// A view of samples [begin, begin + n) (a DataError when they are not all there).
DatasetPtr slice(DatasetPtr base, int64_t begin, int64_t n);

// Low-level readers, exposed for tests.
struct IdxArray {
  std::vector<int32_t> dims;
  std::vector<uint8_t> data;
};
IdxArray read_idx(const std::string& path);  // gz or raw; unsigned-byte IDX only
// An image file as RGB uint8, as timm's loader sees it (PIL's Image.open(...).convert("RGB")):
// EXIF orientation is not applied (Pillow does not apply it either). DataError when unreadable.
cv::Mat read_rgb_image(const std::string& path);
// The same from a file's bytes (`path` names it in the DataError).
cv::Mat decode_rgb_image(const std::vector<uint8_t>& bytes, const std::string& path);

}  // namespace dyt
