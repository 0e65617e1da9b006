// Region decoding of JPEGs with libjpeg-turbo (datasets/jpeg.h).
#include "datasets/jpeg.h"

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
// clang-format on

#include <algorithm>
#include <csetjmp>
#include <stdexcept>
#include <string>

namespace dyt::jpeg {
namespace {

// libjpeg reports errors by calling error_exit, which must not return: jump back and throw.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<ErrorManager*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}
void on_message(j_common_ptr, int) {}  // warnings (e.g. extraneous bytes) are not errors here

// Decodes inside a setjmp frame; the C++ objects it fills live in the caller.
bool run(jpeg_decompress_struct& cinfo, ErrorManager& err, const std::vector<uint8_t>& bytes, const cv::Rect* roi,
         Info* info, Region* out) {
  if (setjmp(err.jump)) return false;
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (info) {
    info->width = static_cast<int>(cinfo.image_width), info->height = static_cast<int>(cinfo.image_height);
    info->supported = cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_GRAYSCALE;
    return true;
  }
  cinfo.out_color_space = JCS_RGB;  // grey sources come out with the value replicated, as in OpenCV and Pillow
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&cinfo);
  const cv::Rect r = *roi & cv::Rect(0, 0, static_cast<int>(cinfo.output_width), static_cast<int>(cinfo.output_height));
  if (r.empty()) {
    std::snprintf(err.message, sizeof err.message, "the box lies outside the %ux%u image", cinfo.output_width,
                  cinfo.output_height);
    return false;
  }
  // Fancy upsampling of subsampled chroma reads the neighbouring chroma sample: a cropped decode
  // treats its first and last column as the image edge. Two more columns on each side keep the
  // box's own columns equal to a full decode's.
  const int x0 = std::max(0, r.x - 2), x1 = std::min(static_cast<int>(cinfo.output_width), r.x + r.width + 2);
  JDIMENSION xoff = static_cast<JDIMENSION>(x0), width = static_cast<JDIMENSION>(x1 - x0);
  if (width != cinfo.output_width) jpeg_crop_scanline(&cinfo, &xoff, &width);
  if (r.y > 0) jpeg_skip_scanlines(&cinfo, static_cast<JDIMENSION>(r.y));
  out->rgb.create(r.height, static_cast<int>(width), CV_8UC3);
  out->origin = cv::Point(static_cast<int>(xoff), r.y);
  while (cinfo.output_scanline < static_cast<JDIMENSION>(r.y + r.height)) {
    JSAMPROW row = out->rgb.ptr<uint8_t>(static_cast<int>(cinfo.output_scanline) - r.y);
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  if (cinfo.output_scanline < cinfo.output_height) jpeg_abort_decompress(&cinfo);
  else jpeg_finish_decompress(&cinfo);
  return true;
}

}  // namespace

Info probe(const std::vector<uint8_t>& bytes) {
  Info info;
  if (!looks_like_jpeg(bytes)) return info;
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error, err.pub.emit_message = on_message;
  if (!run(cinfo, err, bytes, nullptr, &info, nullptr)) info = Info{};
  jpeg_destroy_decompress(&cinfo);
  return info;
}

Region decode_region(const std::vector<uint8_t>& bytes, const cv::Rect& roi) {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error, err.pub.emit_message = on_message;
  Region out;
  const bool ok = run(cinfo, err, bytes, &roi, nullptr, &out);
  jpeg_destroy_decompress(&cinfo);
  if (!ok) throw std::runtime_error(std::string("JPEG decoding failed: ") + err.message);
  return out;
}

}  // namespace dyt::jpeg
