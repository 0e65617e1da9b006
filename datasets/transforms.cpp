// Image transforms after timm: crops, flips, RandAugment, normalisation, random erasing (datasets/transforms.h).
#include "datasets/transforms.h"

#include <fmt/format.h>

#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

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

int interp_flag(const std::string& name) {
  if (name == "bicubic") return cv::INTER_CUBIC;
  if (name == "nearest") return cv::INTER_NEAREST;
  return cv::INTER_LINEAR;
}

double uniform(std::mt19937_64& rng, double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); }
int64_t randint(std::mt19937_64& rng, int64_t a, int64_t b) {  // inclusive
  return std::uniform_int_distribution<int64_t>(a, b)(rng);
}

// torchvision RandomResizedCrop.get_params: 10 tries of (area, log-ratio), then a centre crop.
cv::Rect rrc_box(int W, int H, const std::vector<double>& scale, const std::vector<double>& ratio, std::mt19937_64& rng) {
  const double area = static_cast<double>(W) * H;
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target = area * uniform(rng, scale[0], scale[1]);
    double ar = std::exp(uniform(rng, std::log(ratio[0]), std::log(ratio[1])));
    int w = static_cast<int>(std::lround(std::sqrt(target * ar)));
    int h = static_cast<int>(std::lround(std::sqrt(target / ar)));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      int top = static_cast<int>(randint(rng, 0, H - h)), left = static_cast<int>(randint(rng, 0, W - w));
      return {left, top, w, h};
    }
  }
  double in_ratio = static_cast<double>(W) / H;
  int w = W, h = H;
  if (in_ratio < ratio[0]) h = static_cast<int>(std::lround(w / ratio[0]));
  else if (in_ratio > ratio[1]) w = static_cast<int>(std::lround(h * ratio[1]));
  return {(W - w) / 2, (H - h) / 2, w, h};
}

// ---- RandAugment ops (timm auto_augment.py semantics) ------------------------------------------------
cv::Mat affine(const cv::Mat& img, const cv::Mat& m, const cv::Scalar& fill) {
  cv::Mat out;
  cv::warpAffine(img, out, m, img.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, fill);
  return out;
}

cv::Mat blend(const cv::Mat& degenerate, const cv::Mat& img, double factor) {  // PIL ImageEnhance
  cv::Mat out;
  cv::addWeighted(img, factor, degenerate, 1.0 - factor, 0.0, out);  // saturates to [0, 255]
  return out;
}

cv::Mat grey_of(const cv::Mat& img) {
  if (img.channels() == 1) return img;
  cv::Mat g;
  cv::cvtColor(img, g, cv::COLOR_RGB2GRAY);
  return g;
}

cv::Mat to_channels(const cv::Mat& grey, int channels) {
  if (channels == 1) return grey;
  cv::Mat out;
  cv::cvtColor(grey, out, cv::COLOR_GRAY2RGB);
  return out;
}

cv::Mat auto_contrast(const cv::Mat& img) {
  std::vector<cv::Mat> ch;
  cv::split(img, ch);
  for (auto& c : ch) {
    double lo, hi;
    cv::minMaxLoc(c, &lo, &hi);
    if (hi > lo) c.convertTo(c, CV_8U, 255.0 / (hi - lo), -lo * 255.0 / (hi - lo));
  }
  cv::Mat out;
  cv::merge(ch, out);
  return out;
}

cv::Mat equalize(const cv::Mat& img) {
  std::vector<cv::Mat> ch;
  cv::split(img, ch);
  for (auto& c : ch) cv::equalizeHist(c, c);
  cv::Mat out;
  cv::merge(ch, out);
  return out;
}

cv::Mat lut(const cv::Mat& img, const std::function<int(int)>& f) {
  cv::Mat table(1, 256, CV_8U);
  for (int i = 0; i < 256; ++i) table.at<uint8_t>(i) = cv::saturate_cast<uint8_t>(f(i));
  cv::Mat out;
  cv::LUT(img, table, out);
  return out;
}

}  // namespace

cv::Mat rand_augment(const cv::Mat& img, const RandAugmentSpec& spec, std::mt19937_64& rng, const cv::Scalar& fill) {
  static const char* kOps[] = {"AutoContrast", "Equalize", "Invert",   "Rotate",     "Posterize",
                               "Solarize",     "SolarizeAdd", "Color", "Contrast",   "Brightness",
                               "Sharpness",    "ShearX",   "ShearY",   "TranslateX", "TranslateY"};
  constexpr int kNumOps = 15;
  cv::Mat out = img.clone();
  for (int64_t k = 0; k < spec.num_ops; ++k) {
    const std::string op = kOps[randint(rng, 0, kNumOps - 1)];
    if (uniform(rng, 0, 1) > 0.5) continue;  // timm applies each chosen op with probability 0.5
    double m = spec.magnitude;
    if (spec.magnitude_std > 0) m = std::normal_distribution<double>(m, spec.magnitude_std)(rng);
    m = std::clamp(m, 0.0, 10.0) / 10.0;
    const double sign = uniform(rng, 0, 1) < 0.5 ? -1.0 : 1.0;
    const int W = out.cols, H = out.rows;
    const int ch = out.channels();
    if (op == "AutoContrast") out = auto_contrast(out);
    else if (op == "Equalize") out = equalize(out);
    else if (op == "Invert") out = lut(out, [](int v) { return 255 - v; });
    else if (op == "Rotate") {
      cv::Mat r = cv::getRotationMatrix2D(cv::Point2f(W / 2.0f, H / 2.0f), sign * m * 30.0, 1.0);
      out = affine(out, r, fill);
    } else if (op == "Posterize") {
      int bits = spec.increasing ? 4 - static_cast<int>(m * 4) : static_cast<int>(m * 4) + 4;
      bits = std::clamp(bits, 0, 8);
      const int mask = ~((1 << (8 - bits)) - 1) & 0xff;
      out = lut(out, [mask](int v) { return v & mask; });
    } else if (op == "Solarize") {
      int thresh = spec.increasing ? 256 - static_cast<int>(m * 256) : static_cast<int>(m * 256);
      out = lut(out, [thresh](int v) { return v < thresh ? v : 255 - v; });
    } else if (op == "SolarizeAdd") {
      int add = static_cast<int>(m * 110);
      out = lut(out, [add](int v) { return v < 128 ? std::min(255, v + add) : v; });
    } else if (op == "Color" || op == "Contrast" || op == "Brightness" || op == "Sharpness") {
      double factor = spec.increasing ? 1.0 + sign * m * 0.9 : m * 1.8 + 0.1;
      cv::Mat degenerate;
      if (op == "Color") degenerate = to_channels(grey_of(out), ch);
      else if (op == "Contrast") degenerate = cv::Mat(out.size(), out.type(), cv::Scalar::all(cv::mean(grey_of(out))[0]));
      else if (op == "Brightness") degenerate = cv::Mat::zeros(out.size(), out.type());
      else {  // PIL's SMOOTH kernel, borders kept
        cv::Mat k = (cv::Mat_<float>(3, 3) << 1, 1, 1, 1, 5, 1, 1, 1, 1) / 13.0f;
        cv::filter2D(out, degenerate, -1, k, cv::Point(-1, -1), 0, cv::BORDER_REPLICATE);
      }
      out = blend(degenerate, out, factor);
    } else if (op == "ShearX" || op == "ShearY") {
      double s = sign * m * 0.3;
      cv::Mat a = op == "ShearX" ? (cv::Mat_<double>(2, 3) << 1, s, 0, 0, 1, 0) : (cv::Mat_<double>(2, 3) << 1, 0, 0, s, 1, 0);
      out = affine(out, a, fill);
    } else {  // TranslateX/Y, relative to the image size
      double t = sign * m * 0.45;
      cv::Mat a = op == "TranslateX" ? (cv::Mat_<double>(2, 3) << 1, 0, t * W, 0, 1, 0)
                                     : (cv::Mat_<double>(2, 3) << 1, 0, 0, 0, 1, t * H);
      out = affine(out, a, fill);
    }
  }
  return out;
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
  const int flag = interp_flag(o_.interpolation);
  cv::Mat out;
  if (train_ && o_.train_crop == "random_resized") {
    cv::resize(img(rrc_box(img.cols, img.rows, o_.scale, o_.ratio, rng)), out, cv::Size(S, S), 0, 0, flag);
    return out;
  }
  cv::Mat base = img;
  if (img.cols != S || img.rows != S) {
    // Resize the shorter side to S / crop_pct (S when not cropping), then centre crop.
    const double target = train_ ? S : S / o_.crop_pct;
    const double f = target / std::min(img.cols, img.rows);
    cv::Mat resized;
    cv::resize(img, resized,
               cv::Size(std::max(S, static_cast<int>(std::lround(img.cols * f))), std::max(S, static_cast<int>(std::lround(img.rows * f)))),
               0, 0, flag);
    base = resized(cv::Rect((resized.cols - S) / 2, (resized.rows - S) / 2, S, S)).clone();
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

void ImageTransform::operator()(const cv::Mat& image, std::mt19937_64& rng, float* out) const {
  cv::Mat img = image;
  if (img.channels() != channels_) {
    cv::Mat conv;
    if (channels_ == 1) cv::cvtColor(img, conv, cv::COLOR_RGB2GRAY);
    else cv::cvtColor(img, conv, cv::COLOR_GRAY2RGB);
    img = conv;
  }
  img = crop_and_resize(img, rng);
  if (train_ && o_.hflip > 0 && uniform(rng, 0, 1) < o_.hflip) {
    cv::Mat f;
    cv::flip(img, f, 1);
    img = f;
  }
  if (use_ra_) {
    cv::Scalar fill;
    for (int64_t c = 0; c < channels_; ++c) fill[static_cast<int>(c)] = std::round(mean_[c] * 255.0);
    img = rand_augment(img, ra_, rng, fill);
  }
  if (!img.isContinuous()) img = img.clone();
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

}  // namespace dyt
