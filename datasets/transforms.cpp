// Image transforms after timm: crops, flips, RandAugment, normalisation, random erasing (datasets/transforms.h).
#include "datasets/transforms.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "core/errors.h"
#include "datasets/jpeg.h"
#include "datasets/pil_image.h"

namespace dyt {

void AugmentOptions::visit(FieldVisitor& v) {
  v.field("train_crop", train_crop,
          doc("training crop: none, random_resized (timm/torchvision RandomResizedCrop) or pad_random (pad, then random crop)")
              .one_of({"none", "random_resized", "pad_random"}));
  v.field("scale", scale, doc("random_resized: area fraction range [min, max]").gt(0).le(1));
  v.field("ratio", ratio, doc("random_resized: aspect ratio range [min, max]").gt(0));
  v.field("pad", pad, doc("pad_random: zero padding in pixels on each side").ge(0));
  v.field("hflip", hflip, doc("probability of a horizontal flip").ge(0).le(1));
  v.field("randaugment", randaugment, doc("timm RandAugment spec, e.g. rand-m9-mstd0.5-inc1; empty = off"));
  v.field("random_erasing", random_erasing, doc("probability of timm RandomErasing (pixel mode)").ge(0).le(1));
  v.field("crop_pct", crop_pct, doc("eval: resize to size / crop_pct, then centre crop (when resizing)").gt(0).le(1));
  v.field("interpolation", interpolation, doc("resize filter").one_of({"bilinear", "bicubic", "nearest"}));
  v.field("mixup", mixup, doc("mixup Beta(alpha, alpha) parameter; 0 = off").ge(0));
  v.field("cutmix", cutmix, doc("cutmix Beta(alpha, alpha) parameter; 0 = off").ge(0));
  v.field("mixup_prob", mixup_prob, doc("probability of mixing a batch when mixup or cutmix is on").ge(0).le(1));
  v.field("mixup_switch_prob", mixup_switch_prob, doc("probability of cutmix instead of mixup when both are on").ge(0).le(1));
  v.check(scale.size() == 2 && scale[0] <= scale[1], "scale", "give two values [min, max] with min <= max");
  v.check(ratio.size() == 2 && ratio[0] <= ratio[1], "ratio", "give two values [min, max] with min <= max");
  bool ra_ok = true;
  std::string ra_err;
  if (!randaugment.empty()) {
    try {
      parse_randaugment(randaugment);
    } catch (const std::invalid_argument& e) {
      ra_ok = false, ra_err = e.what();
    }
  }
  v.check(ra_ok, "randaugment", ra_err);
}

RandAugmentSpec parse_randaugment(const std::string& spec) {
  const std::string form = "expected timm's form rand-m<magnitude>[-mstd<std>][-inc<0|1>][-n<ops>], e.g. rand-m9-mstd0.5-inc1";
  if (spec.rfind("rand", 0) != 0) throw std::invalid_argument("'" + spec + "': " + form);
  RandAugmentSpec r;
  size_t pos = 4;
  while (pos < spec.size()) {
    if (spec[pos] != '-') throw std::invalid_argument("'" + spec + "': " + form);
    size_t end = spec.find('-', pos + 1);
    std::string part = spec.substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1);
    pos = end == std::string::npos ? spec.size() : end;
    try {
      if (part.rfind("mstd", 0) == 0) r.magnitude_std = std::stod(part.substr(4));
      else if (part.rfind("inc", 0) == 0) r.increasing = std::stoi(part.substr(3)) != 0;
      else if (part.rfind("m", 0) == 0) r.magnitude = std::stod(part.substr(1));
      else if (part.rfind("n", 0) == 0) r.num_ops = std::stoi(part.substr(1));
      else throw std::invalid_argument(part);
    } catch (const std::exception&) {
      throw std::invalid_argument("'" + spec + "': cannot read '" + part + "'; " + form);
    }
  }
  return r;
}

namespace {

double uniform(std::mt19937_64& rng, double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); }
int64_t randint(std::mt19937_64& rng, int64_t a, int64_t b) {  // inclusive
  return std::uniform_int_distribution<int64_t>(a, b)(rng);
}
int round_half_even(double v) { return static_cast<int>(std::nearbyint(v)); }  // Python's round()

}  // namespace

cv::Rect random_resized_crop_box(int W, int H, const std::vector<double>& scale, const std::vector<double>& ratio,
                                 std::mt19937_64& rng) {
  const double area = static_cast<double>(W) * H;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * uniform(rng, scale[0], scale[1]);
    const double ar = std::exp(uniform(rng, std::log(ratio[0]), std::log(ratio[1])));
    const int w = round_half_even(std::sqrt(target * ar)), h = round_half_even(std::sqrt(target / ar));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      const int top = static_cast<int>(randint(rng, 0, H - h)), left = static_cast<int>(randint(rng, 0, W - w));
      return {left, top, w, h};
    }
  }
  const double in_ratio = static_cast<double>(W) / H;
  int w = W, h = H;
  if (in_ratio < ratio[0]) h = round_half_even(w / ratio[0]);
  else if (in_ratio > ratio[1]) w = round_half_even(h * ratio[1]);
  return {(W - w) / 2, (H - h) / 2, w, h};
}

cv::Mat resized_crop(const cv::Mat& img, const cv::Rect& box, int size, const std::string& interpolation) {
  return pil::resize(img(box), size, size, pil::filter_named(interpolation));
}

// ---- RandAugment (timm's auto_augment.py: ops, level -> argument, Pillow's pixels) ------------------
const std::vector<std::string>& rand_augment_ops(bool increasing) {
  static const std::vector<std::string> plain = {
      "AutoContrast", "Equalize", "Invert",    "Rotate", "Posterize", "Solarize",      "SolarizeAdd",  "Color",
      "Contrast",     "Brightness", "Sharpness", "ShearX", "ShearY",  "TranslateXRel", "TranslateYRel"};
  static const std::vector<std::string> inc = {
      "AutoContrast",         "Equalize",           "Invert",      "Rotate",  "PosterizeIncreasing",
      "SolarizeIncreasing",   "SolarizeAdd",        "ColorIncreasing", "ContrastIncreasing",
      "BrightnessIncreasing", "SharpnessIncreasing", "ShearX",     "ShearY",  "TranslateXRel", "TranslateYRel"};
  return increasing ? inc : plain;
}

double rand_augment_arg(const std::string& name, double level, bool negate) {
  const double sign = negate ? -1.0 : 1.0;
  auto ends_with = [&](const char* suffix) {
    const std::string x(suffix);
    return name.size() >= x.size() && name.compare(name.size() - x.size(), x.size(), x) == 0;
  };
  if (name == "AutoContrast" || name == "Equalize" || name == "Invert") return 0.0;
  if (name == "Rotate") return sign * ((level / 10.0) * 30.0);
  if (name == "Posterize") return static_cast<int>((level / 10.0) * 4);
  if (name == "PosterizeIncreasing") return 4 - static_cast<int>((level / 10.0) * 4);
  if (name == "Solarize") return std::min(256, static_cast<int>((level / 10.0) * 256));
  if (name == "SolarizeIncreasing") return 256 - std::min(256, static_cast<int>((level / 10.0) * 256));
  if (name == "SolarizeAdd") return std::min(128, static_cast<int>((level / 10.0) * 110));
  if (name == "ShearX" || name == "ShearY") return sign * ((level / 10.0) * 0.3);
  if (name == "TranslateXRel" || name == "TranslateYRel") return sign * ((level / 10.0) * 0.45);
  if (ends_with("Increasing")) return std::max(0.1, 1.0 + sign * ((level / 10.0) * 0.9));
  if (name == "Color" || name == "Contrast" || name == "Brightness" || name == "Sharpness")
    return (level / 10.0) * 1.8 + 0.1;
  throw std::invalid_argument("RandAugment: unknown op '" + name + "'");
}

cv::Mat rand_augment_op(const cv::Mat& img, const std::string& name_in, double arg, const cv::Scalar& fill,
                        const std::string& interpolation) {
  std::string name = name_in;
  const std::string inc = "Increasing";
  if (name.size() > inc.size() && name.compare(name.size() - inc.size(), inc.size(), inc) == 0)
    name.resize(name.size() - inc.size());
  const pil::Filter f = pil::filter_named(interpolation);
  std::array<uint8_t, 256> t{};
  if (name == "AutoContrast") return pil::autocontrast(img);
  if (name == "Equalize") return pil::equalize(img);
  if (name == "Invert") {
    for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>(255 - i);
    return pil::point(img, t);
  }
  if (name == "Rotate") return pil::rotate(img, arg, f, fill);
  if (name == "Posterize") {
    const int bits = static_cast<int>(arg);
    if (bits >= 8) return img.clone();
    const int mask = ~((1 << (8 - std::max(bits, 0))) - 1) & 0xff;
    for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>(i & mask);
    return pil::point(img, t);
  }
  if (name == "Solarize") {
    const int thresh = static_cast<int>(arg);
    for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>(i < thresh ? i : 255 - i);
    return pil::point(img, t);
  }
  if (name == "SolarizeAdd") {
    const int add = static_cast<int>(arg);
    for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>(i < 128 ? std::min(255, i + add) : i);
    return pil::point(img, t);
  }
  if (name == "Color") return pil::enhance_color(img, arg);
  if (name == "Contrast") return pil::enhance_contrast(img, arg);
  if (name == "Brightness") return pil::enhance_brightness(img, arg);
  if (name == "Sharpness") return pil::enhance_sharpness(img, arg);
  if (name == "ShearX") return pil::affine(img, {1, arg, 0, 0, 1, 0}, f, fill);
  if (name == "ShearY") return pil::affine(img, {1, 0, 0, arg, 1, 0}, f, fill);
  if (name == "TranslateXRel") return pil::affine(img, {1, 0, arg * img.cols, 0, 1, 0}, f, fill);
  if (name == "TranslateYRel") return pil::affine(img, {1, 0, 0, 0, 1, arg * img.rows}, f, fill);
  throw std::invalid_argument("RandAugment: unknown op '" + name_in + "'");
}

cv::Mat rand_augment(const cv::Mat& img, const RandAugmentSpec& spec, std::mt19937_64& rng, const cv::Scalar& fill,
                     const std::string& interpolation) {
  const auto& ops = rand_augment_ops(spec.increasing);
  cv::Mat out = img;
  for (int64_t k = 0; k < spec.num_ops; ++k) {
    const std::string& op = ops[randint(rng, 0, static_cast<int64_t>(ops.size()) - 1)];
    if (uniform(rng, 0, 1) > 0.5) continue;  // timm applies each chosen op with probability 0.5
    double m = spec.magnitude;
    if (spec.magnitude_std > 0) m = std::normal_distribution<double>(m, spec.magnitude_std)(rng);
    m = std::clamp(m, 0.0, 10.0);
    const bool negate = uniform(rng, 0, 1) > 0.5;  // timm's _randomly_negate
    out = rand_augment_op(out, op, rand_augment_arg(op, m, negate), fill, interpolation);
  }
  return out.data == img.data ? img.clone() : out;
}

void random_erase(float* chw, int64_t channels, int64_t h, int64_t w, double probability, std::mt19937_64& rng) {
  if (uniform(rng, 0, 1) >= probability) return;
  const double area = static_cast<double>(h) * w;
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target = area * uniform(rng, 0.02, 1.0 / 3.0);
    double ar = std::exp(uniform(rng, std::log(0.3), std::log(1.0 / 0.3)));
    int64_t eh = std::lround(std::sqrt(target * ar)), ew = std::lround(std::sqrt(target / ar));
    if (ew < w && eh < h && ew > 0 && eh > 0) {
      int64_t top = randint(rng, 0, h - eh), left = randint(rng, 0, w - ew);
      for (int64_t c = 0; c < channels; ++c)
        for (int64_t y = top; y < top + eh; ++y)
          for (int64_t x = left; x < left + ew; ++x) chw[(c * h + y) * w + x] = normal(rng);
      return;
    }
  }
}

ImageTransform::ImageTransform(const AugmentOptions& opts, bool train, int64_t out_size, int64_t channels,
                               std::vector<double> mean, std::vector<double> std)
    : o_(opts), train_(train), size_(out_size), channels_(channels), mean_(std::move(mean)), std_(std::move(std)) {
  if (mean_.size() == 1 && channels_ > 1) mean_.assign(channels_, mean_[0]);
  if (std_.size() == 1 && channels_ > 1) std_.assign(channels_, std_[0]);
  if (static_cast<int64_t>(mean_.size()) != channels_ || static_cast<int64_t>(std_.size()) != channels_)
    throw std::invalid_argument(fmt::format("data.mean / data.std need 1 or {} values, got {} / {}", channels_,
                                            mean_.size(), std_.size()));
  if (train_ && !o_.randaugment.empty()) ra_ = parse_randaugment(o_.randaugment), use_ra_ = true;
}

cv::Mat ImageTransform::crop_and_resize(const cv::Mat& img, std::mt19937_64& rng) const {
  const int S = static_cast<int>(size_);
  const pil::Filter filter = pil::filter_named(o_.interpolation);
  if (train_ && o_.train_crop == "random_resized")
    return resized_crop(img, random_resized_crop_box(img.cols, img.rows, o_.scale, o_.ratio, rng), S, o_.interpolation);
  cv::Mat base = img;
  if (img.cols != S || img.rows != S) {
    // torchvision Resize(int): the shorter side to floor(S / crop_pct) (S when not cropping), the
    // longer to int(short * long / shorter side); then CenterCrop(S) with Python-rounded offsets.
    const int target = train_ ? S : static_cast<int>(std::floor(S / o_.crop_pct));
    const bool wide = img.cols >= img.rows;
    const int shorter = wide ? img.rows : img.cols, longer = wide ? img.cols : img.rows;
    const int new_long = static_cast<int>(static_cast<double>(target) * longer / shorter);
    const int w = wide ? new_long : target, h = wide ? target : new_long;
    cv::Mat resized = pil::resize(img, w, h, filter);
    if (w < S || h < S)
      throw std::invalid_argument(fmt::format("image transform: a {}x{} image resized to {}x{} is smaller than the crop {}",
                                              img.cols, img.rows, w, h, S));
    const int top = static_cast<int>(std::nearbyint((h - S) / 2.0)), left = static_cast<int>(std::nearbyint((w - S) / 2.0));
    base = resized(cv::Rect(left, top, S, S)).clone();
  }
  if (train_ && o_.train_crop == "pad_random" && o_.pad > 0) {
    const int p = static_cast<int>(o_.pad);
    cv::Mat padded;
    cv::copyMakeBorder(base, padded, p, p, p, p, cv::BORDER_CONSTANT, cv::Scalar::all(0));
    int top = static_cast<int>(randint(rng, 0, 2 * p)), left = static_cast<int>(randint(rng, 0, 2 * p));
    return padded(cv::Rect(left, top, S, S)).clone();
  }
  return base;
}

cv::Mat ImageTransform::to_channels(const cv::Mat& img) const {
  if (img.channels() == channels_) return img;
  if (channels_ == 1) return pil::grey(img);
  cv::Mat conv;
  cv::cvtColor(img, conv, cv::COLOR_GRAY2RGB);
  return conv;
}

cv::Mat ImageTransform::flip_and_augment(cv::Mat img, std::mt19937_64& rng) const {
  if (train_ && o_.hflip > 0 && uniform(rng, 0, 1) < o_.hflip) {
    cv::Mat f;
    cv::flip(img, f, 1);
    img = f;
  }
  if (use_ra_) {
    cv::Scalar fill;  // timm's img_mean: min(255, round(255 * mean))
    for (int64_t c = 0; c < channels_; ++c) fill[static_cast<int>(c)] = std::min(255.0, std::nearbyint(mean_[c] * 255.0));
    img = rand_augment(img, ra_, rng, fill, o_.interpolation);
  }
  if (!img.isContinuous()) img = img.clone();
  return img;
}

cv::Mat ImageTransform::pixels(const cv::Mat& image, std::mt19937_64& rng) const {
  return flip_and_augment(crop_and_resize(to_channels(image), rng), rng);
}

bool ImageTransform::from_jpeg(const std::vector<uint8_t>& bytes, const std::string& path, std::mt19937_64& rng,
                               float* out) const {
  if (!crops_before_decoding()) return false;
  const jpeg::Info info = jpeg::probe(bytes);
  if (!info.supported) return false;
  const cv::Rect box = random_resized_crop_box(info.width, info.height, o_.scale, o_.ratio, rng);
  jpeg::Region region;
  try {
    region = jpeg::decode_region(bytes, box);
  } catch (const std::runtime_error& e) {
    throw DataError(fmt::format("{}: {}; remove or replace the file", path, e.what()));
  }
  const cv::Mat crop = to_channels(region.rgb(cv::Rect(box.x - region.origin.x, box.y - region.origin.y, box.width, box.height)));
  const int S = static_cast<int>(size_);
  normalise_and_erase(flip_and_augment(pil::resize(crop, S, S, pil::filter_named(o_.interpolation)), rng), rng, out);
  return true;
}

void ImageTransform::normalise_and_erase(const cv::Mat& img, std::mt19937_64& rng, float* out) const {
  const int64_t HW = size_ * size_;
  const uint8_t* px = img.data;
  for (int64_t c = 0; c < channels_; ++c) {
    const float scale = static_cast<float>(1.0 / (255.0 * std_[c]));
    const float shift = static_cast<float>(-mean_[c] / std_[c]);
    float* dst = out + c * HW;
    for (int64_t i = 0; i < HW; ++i) dst[i] = px[i * channels_ + c] * scale + shift;
  }
  if (train_ && o_.random_erasing > 0) random_erase(out, channels_, size_, size_, o_.random_erasing, rng);
}

void ImageTransform::operator()(const cv::Mat& image, std::mt19937_64& rng, float* out) const {
  normalise_and_erase(pixels(image, rng), rng, out);
}

}  // namespace dyt
