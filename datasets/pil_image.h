// Pillow's uint8 image operations, re-implemented so that the suite's pixels equal timm's (timm
// runs its transforms on PIL images): Image.resize (separable filters whose support widens with
// the downscale factor, i.e. antialiased; 22-bit fixed-point weights; two passes in Pillow 13's
// order, each rounded to uint8), Image.transform(AFFINE) and Image.rotate with Pillow's samplers (nearest
// in 16.16 fixed point, bilinear, bicubic with a = -1) and fill colour, Image.blend (ImageEnhance),
// convert("L"), ImageOps.autocontrast / equalize, ImageFilter.SMOOTH and point tables.
// OpenCV differs on each: its bicubic resize does not widen the filter when shrinking, its cubic
// kernel has a = -0.75, its blend rounds where Pillow truncates.
// Images are CV_8UC1 or CV_8UC3 (RGB where the order matters: grey()); the ops act per channel.
// Checked pixel for pixel against Pillow by golden.pixels_equal_timm_and_pil.
#pragma once

#include <opencv2/core.hpp>

#include <array>
#include <cstdint>
#include <string>

namespace dyt::pil {

enum class Filter { nearest, box, bilinear, hamming, bicubic, lanczos };
// "nearest" | "box" | "bilinear" | "hamming" | "bicubic" | "lanczos"; throws std::invalid_argument.
Filter filter_named(const std::string& name);

// Image.resize((width, height), filter): antialiased for every filter but nearest.
cv::Mat resize(const cv::Mat& img, int width, int height, Filter filter);

// Image.transform(size, AFFINE, a, filter, fillcolor): output pixel (x, y) samples the input at
// (a0 (x + .5) + a1 (y + .5) + a2, a3 (x + .5) + a4 (y + .5) + a5); outside the input: fill.
// Only nearest, bilinear and bicubic exist for transforms (as in Pillow).
cv::Mat affine(const cv::Mat& img, const std::array<double, 6>& a, Filter filter, const cv::Scalar& fill);
// Image.rotate(degrees, filter, fillcolor=fill): counter-clockwise about the centre, same size.
cv::Mat rotate(const cv::Mat& img, double degrees, Filter filter, const cv::Scalar& fill);

// Image.blend(a, b, alpha) = a + alpha (b - a) in float, truncated (clipped when extrapolating).
cv::Mat blend(const cv::Mat& a, const cv::Mat& b, double alpha);
// convert("L") of an RGB image (ITU-R 601-2 in 16-bit fixed point); a grey image is returned as is.
cv::Mat grey(const cv::Mat& rgb);
// ImageOps.autocontrast(img) (cutoff 0, per channel) and ImageOps.equalize(img) (per channel).
cv::Mat autocontrast(const cv::Mat& img);
cv::Mat equalize(const cv::Mat& img);
// img.filter(ImageFilter.SMOOTH): 3x3 (1 1 1 / 1 5 1 / 1 1 1) / 13, border pixels copied.
cv::Mat smooth(const cv::Mat& img);
// img.point(lut), the same table for every channel.
cv::Mat point(const cv::Mat& img, const std::array<uint8_t, 256>& lut);

// ImageEnhance.{Color, Contrast, Brightness, Sharpness}(img).enhance(factor).
cv::Mat enhance_color(const cv::Mat& img, double factor);
cv::Mat enhance_contrast(const cv::Mat& img, double factor);
cv::Mat enhance_brightness(const cv::Mat& img, double factor);
cv::Mat enhance_sharpness(const cv::Mat& img, double factor);

}  // namespace dyt::pil
