// Per-sample image transforms (OpenCV, uint8 HWC in, normalised float CHW out) and their options.
// Training: crop (random-resized as timm/torchvision, or pad + random crop as for CIFAR), flip,
// RandAugment (timm's rand-mM-mstdS-inc1), normalise, random erasing (timm, per-pixel mode).
// Evaluation: resize the shorter side to size / crop_pct and centre-crop (only when the size
// changes), normalise. Mixup/CutMix act on whole batches and live in the classification task.
// Every random choice draws from the generator passed in, which the loader seeds per sample.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/options.h"

namespace dyt {

struct AugmentOptions {
  std::string train_crop = "none";  // none | random_resized | pad_random
  std::vector<double> scale{0.08, 1.0};
  std::vector<double> ratio{0.75, 4.0 / 3.0};
  int64_t pad = 4;
  double hflip = 0.0;
  std::string randaugment;  // "" or timm syntax, e.g. rand-m9-mstd0.5-inc1
  double random_erasing = 0.0;
  double crop_pct = 0.875;
  std::string interpolation = "bilinear";
  double mixup = 0.0, cutmix = 0.0, mixup_prob = 1.0, mixup_switch_prob = 0.5;
  void visit(FieldVisitor& v);
};

struct RandAugmentSpec {
  int64_t num_ops = 2;
  double magnitude = 9, magnitude_std = 0.0;
  bool increasing = false;
};
// Parses "rand-m9-mstd0.5-inc1[-n2]"; throws std::invalid_argument with the accepted form.
RandAugmentSpec parse_randaugment(const std::string& spec);

class ImageTransform {
 public:
  ImageTransform(const AugmentOptions& opts, bool train, int64_t out_size, int64_t channels, std::vector<double> mean,
                 std::vector<double> std);
  // Writes channels * out_size * out_size floats to `out`.
  void operator()(const cv::Mat& image, std::mt19937_64& rng, float* out) const;
  int64_t out_size() const { return size_; }
  int64_t channels() const { return channels_; }

 private:
  cv::Mat crop_and_resize(const cv::Mat& img, std::mt19937_64& rng) const;
  AugmentOptions o_;
  bool train_;
  int64_t size_, channels_;
  std::vector<double> mean_, std_;
  RandAugmentSpec ra_;
  bool use_ra_ = false;
};

// One RandAugment pass on an RGB or grey uint8 image (exposed for tests).
cv::Mat rand_augment(const cv::Mat& img, const RandAugmentSpec& spec, std::mt19937_64& rng, const cv::Scalar& fill);

// timm RandomErasing (mode 'pixel', one box, area 2%..33%, log-uniform aspect 0.3..3.3) on a
// normalised CHW float image.
void random_erase(float* chw, int64_t channels, int64_t h, int64_t w, double probability, std::mt19937_64& rng);

}  // namespace dyt
