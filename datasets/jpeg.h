// JPEG decoding through libjpeg-turbo's own API, for the training crop: only the rows and the
// iMCU columns of the RandomResizedCrop box are decoded (jpeg_skip_scanlines, jpeg_crop_scanline,
// and decoding stops after the box's last row), with the settings OpenCV's imread and Pillow use
// (islow IDCT, fancy upsampling, RGB out), so the box's pixels equal a full decode's.
// Checked against full decodes by the Data.JpegRegionDecodeEqualsTheFullDecode test.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace dyt::jpeg {

struct Info {
  int width = 0, height = 0;
  bool supported = false;  // baseline/progressive YCbCr or grey: decode_region handles it
};
// Reads the header only. supported = false for CMYK/YCCK or anything libjpeg rejects (then use
// the ordinary decoder).
Info probe(const std::vector<uint8_t>& bytes);

// The region of the image holding `roi` (full-image pixels), RGB: `origin` is where its top-left
// pixel lies in the full image (left edge rounded down to an iMCU column). Throws
// std::runtime_error (with libjpeg's message) on corrupt data.
struct Region {
  cv::Mat rgb;
  cv::Point origin;
};
Region decode_region(const std::vector<uint8_t>& bytes, const cv::Rect& roi);

// True when the bytes start with a JPEG SOI marker.
inline bool looks_like_jpeg(const std::vector<uint8_t>& b) { return b.size() > 3 && b[0] == 0xFF && b[1] == 0xD8; }

}  // namespace dyt::jpeg
