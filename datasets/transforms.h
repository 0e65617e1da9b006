// Per-sample image transforms (uint8 HWC in, normalised float CHW out) and their options.
// Training: crop (random-resized as timm/torchvision, or pad + random crop as for CIFAR), flip,
// RandAugment (timm's rand-mM-mstdS-inc1), normalise, random erasing (timm, per-pixel mode).
// Evaluation: resize the shorter side to floor(size / crop_pct) and centre-crop (only when the
// size changes), normalise. Mixup/CutMix act on whole batches and live in the classification task.
// Every random choice draws from the generator passed in, which the loader seeds per sample.
// The pixels are timm's: resizes and RandAugment's geometric ops are Pillow's (datasets/pil_image.h,
// antialiased, bicubic as Pillow computes it), sizes and crop offsets round as torchvision's do.
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
  // The uint8 image before normalisation and random erasing (crop, resize, flip, RandAugment):
  // what timm's transform list yields before ToTensor. For the pixel tests.
  cv::Mat pixels(const cv::Mat& image, std::mt19937_64& rng) const;
  // Training with RandomResizedCrop: the box is drawn from the image's size alone, so a JPEG can
  // be decoded only where the box lies (datasets/jpeg.h): same random draws, same pixels as
  // decoding the whole file and calling operator(). False (rng untouched) when this transform does
  // not crop that way or the bytes are not a JPEG libjpeg-turbo decodes by region.
  bool crops_before_decoding() const { return train_ && o_.train_crop == "random_resized"; }
  bool from_jpeg(const std::vector<uint8_t>& bytes, const std::string& path, std::mt19937_64& rng, float* out) const;
  int64_t out_size() const { return size_; }
  int64_t channels() const { return channels_; }

 private:
  cv::Mat crop_and_resize(const cv::Mat& img, std::mt19937_64& rng) const;
  cv::Mat to_channels(const cv::Mat& img) const;
  cv::Mat flip_and_augment(cv::Mat img, std::mt19937_64& rng) const;  // after the crop
  void normalise_and_erase(const cv::Mat& img, std::mt19937_64& rng, float* out) const;
  AugmentOptions o_;
  bool train_;
  int64_t size_, channels_;
  std::vector<double> mean_, std_;
  RandAugmentSpec ra_;
  bool use_ra_ = false;
};

// One RandAugment pass on an RGB or grey uint8 image; `interpolation` is the geometric ops' filter
// (timm passes its training interpolation: bilinear, bicubic or nearest).
cv::Mat rand_augment(const cv::Mat& img, const RandAugmentSpec& spec, std::mt19937_64& rng, const cv::Scalar& fill,
                     const std::string& interpolation = "bicubic");
// The ops RandAugment draws from (timm's _RAND_TRANSFORMS, or _RAND_INCREASING_TRANSFORMS).
const std::vector<std::string>& rand_augment_ops(bool increasing);
// timm's level -> argument for op `name` at magnitude m in [0, 10] (negate: the random sign).
double rand_augment_arg(const std::string& name, double magnitude, bool negate);
// Applies timm's op `name` with argument `arg` (as rand_augment_arg returns it).
cv::Mat rand_augment_op(const cv::Mat& img, const std::string& name, double arg, const cv::Scalar& fill,
                        const std::string& interpolation);

// The box of torchvision/timm RandomResizedCrop.get_params (10 tries, then a centre crop).
cv::Rect random_resized_crop_box(int width, int height, const std::vector<double>& scale,
                                 const std::vector<double>& ratio, std::mt19937_64& rng);
// torchvision F.resized_crop on a PIL image: crop `box`, then Pillow's resize to size x size.
cv::Mat resized_crop(const cv::Mat& img, const cv::Rect& box, int size, const std::string& interpolation);

// timm RandomErasing (mode 'pixel', one box, area 2%..33%, log-uniform aspect 0.3..3.3) on a
// normalised CHW float image.
void random_erase(float* chw, int64_t channels, int64_t h, int64_t w, double probability, std::mt19937_64& rng);

}  // namespace dyt
