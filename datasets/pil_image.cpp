// Pillow's uint8 image operations (datasets/pil_image.h). Each function follows the arithmetic of
// Pillow's C code (libImaging/Resample.c, Geometry.c, Blend.c, Convert.c, Filter.c) and of its
// Python wrappers (Image.rotate, ImageOps, ImageEnhance), step for step where the rounding depends
// on it. Compiled with -ffp-contract=off: a fused multiply-add would round differently.
#include "datasets/pil_image.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace dyt::pil {

Filter filter_named(const std::string& name) {
  if (name == "nearest") return Filter::nearest;
  if (name == "box") return Filter::box;
  if (name == "bilinear") return Filter::bilinear;
  if (name == "hamming") return Filter::hamming;
  if (name == "bicubic") return Filter::bicubic;
  if (name == "lanczos") return Filter::lanczos;
  throw std::invalid_argument("unknown resampling filter '" + name +
                              "'; use nearest, box, bilinear, hamming, bicubic or lanczos");
}

namespace {

void check_image(const cv::Mat& img, const char* what) {
  if (img.depth() != CV_8U || (img.channels() != 1 && img.channels() != 3 && img.channels() != 4) || img.empty())
    throw std::invalid_argument(fmt::format("pil::{}: expects a non-empty uint8 image with 1, 3 or 4 channels", what));
}

cv::Mat continuous(const cv::Mat& img) { return img.isContinuous() ? img : img.clone(); }

// ---- Image.resize ------------------------------------------------------------------------------------
double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}
double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  return std::sin(x) / x * (static_cast<double>(0.54f) + static_cast<double>(0.46f) * std::cos(x));
}
double bicubic_filter(double x) {  // a = -0.5
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}
double lanczos_filter(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

struct FilterDef {
  double (*f)(double);
  double support;
};
FilterDef filter_def(Filter f) {
  switch (f) {
    case Filter::box: return {box_filter, 0.5};
    case Filter::bilinear: return {bilinear_filter, 1.0};
    case Filter::hamming: return {hamming_filter, 1.0};
    case Filter::bicubic: return {bicubic_filter, 2.0};
    case Filter::lanczos: return {lanczos_filter, 3.0};
    default: throw std::invalid_argument("pil: nearest has no resampling kernel");
  }
}

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;  // per output pixel: first input pixel, number of taps
  std::vector<int32_t> k;         // out_size x ksize fixed-point weights
};

Coeffs precompute(int in_size, double in0, double in1, int out_size, const FilterDef& fd) {
  const double scale = (in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = fd.support * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size), c.count.resize(out_size), c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  const double inv_filterscale = 1.0 / filterscale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      w[x] = fd.f((x + xmin - center + 0.5) * inv_filterscale);
      ww += w[x];
    }
    if (ww != 0.0)
      for (int x = 0; x < xmax; ++x) w[x] /= ww;
    for (int x = 0; x < xmax; ++x)
      c.k[static_cast<size_t>(xx) * c.ksize + x] = w[x] < 0 ? static_cast<int32_t>(-0.5 + w[x] * (1 << kPrecisionBits))
                                                            : static_cast<int32_t>(0.5 + w[x] * (1 << kPrecisionBits));
    c.first[xx] = xmin, c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t ss) { return static_cast<uint8_t>(std::clamp(ss >> kPrecisionBits, 0, 255)); }

// Compiled twice (AVX2: 8 int32 lanes with a native multiply; the x86-64 baseline), chosen when
// the program loads.
__attribute__((target_clones("avx2", "default"))) cv::Mat resample_vertical(const cv::Mat& img, const Coeffs& c,
                                                                             int shift) {
  const int H = static_cast<int>(c.first.size()), rowlen = img.cols * img.channels();
  cv::Mat out(H, img.cols, img.type());
  std::vector<int32_t> acc(rowlen);
  for (int yy = 0; yy < H; ++yy) {
    // Row by row over the taps (integer sums: the order does not change the result), so the
    // inner loop runs along a row and vectorises.
    const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    const int first = c.first[yy] - shift;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < c.count[yy]; ++y) {
      const uint8_t* in = img.ptr<uint8_t>(first + y);
      const int32_t w = k[y];
      int32_t* a = acc.data();
      for (int i = 0; i < rowlen; ++i) a[i] += in[i] * w;
    }
    uint8_t* o = out.ptr<uint8_t>(yy);
    for (int i = 0; i < rowlen; ++i) o[i] = clip8(acc[i]);
  }
  return out;
}

// Rows [row0, row0 + rows) of img, resampled horizontally to c.first.size() columns: the
// vertical pass of the transposed rows, transposed back. The sums are Pillow's integer sums, whose
// order does not change them, so the result is Pillow's bit for bit; along the transposed rows the
// inner loop vectorises, which a sweep over each output pixel's taps does not (3x faster).
cv::Mat resample_horizontal(const cv::Mat& img, int row0, int rows, const Coeffs& c) {
  cv::Mat t, r, out;
  cv::transpose(img.rowRange(row0, row0 + rows), t);
  r = resample_vertical(t, c, 0);
  cv::transpose(r, out);
  return out;
}

// ---- Image.transform(AFFINE) ------------------------------------------------------------------------
inline int floor_int(double v) { return v < 0.0 ? static_cast<int>(std::floor(v)) : static_cast<int>(v); }
inline int coord(double v) { return v < 0.0 ? -1 : static_cast<int>(v); }
inline int clip_index(int v, int n) { return v < 0 ? 0 : (v < n ? v : n - 1); }

inline double cubic(double v1, double v2, double v3, double v4, double d) {  // Pillow's BICUBIC (a = -1)
  const double p1 = v2, p2 = -v1 + v3, p3 = 2 * (v1 - v2) + v3 - v4, p4 = -v1 + v2 - v3 + v4;
  return p1 + d * (p2 + d * (p3 + d * p4));
}

// One output pixel of Pillow's bicubic transform, every channel at once. Pillow interpolates each
// channel's 4 rows at dx, then the 4 results at dy; the 4 x C row interpolations share dx, so
// they run as one loop over 4 * C lanes that vectorises, with the same IEEE operations in the
// same order per lane (so the same bits). A row below the image repeats the one above it, as
// Pillow's "v[j] = v[j - 1]" does.
template <int C>
__attribute__((always_inline)) inline void bicubic_pixel(const uint8_t* const rows[4], const int xs[4], double dx,
                                                         double dy, uint8_t* o) {
  constexpr int N = 4 * C;
  int32_t v1[N], v2[N], v3[N], v4[N];
  for (int j = 0; j < 4; ++j)
    for (int c = 0; c < C; ++c) {
      v1[j * C + c] = rows[j][xs[0] + c], v2[j * C + c] = rows[j][xs[1] + c];
      v3[j * C + c] = rows[j][xs[2] + c], v4[j * C + c] = rows[j][xs[3] + c];
    }
  // Pillow's row polynomial has integer coefficients here (its inputs are pixel values), exact in
  // int32 as in double; only the Horner steps need double. Four lanes at a time (GCC vectors:
  // AVX in the AVX2 clone, SSE2 pairs otherwise), each lane the scalar code's operations.
  typedef int32_t v4i __attribute__((vector_size(16)));
  typedef double v4d __attribute__((vector_size(32)));
  static_assert(N % 4 == 0, "4 x channels lanes");
  double r[N];
  const v4d d4 = {dx, dx, dx, dx};
  for (int g = 0; g < N; g += 4) {
    v4i a, b, c, d;
    std::memcpy(&a, v1 + g, 16), std::memcpy(&b, v2 + g, 16), std::memcpy(&c, v3 + g, 16), std::memcpy(&d, v4 + g, 16);
    const v4d p1 = __builtin_convertvector(b, v4d), p2 = __builtin_convertvector(-a + c, v4d),
              p3 = __builtin_convertvector(2 * (a - b) + c - d, v4d), p4 = __builtin_convertvector(-a + b - c + d, v4d);
    const v4d rv = p1 + d4 * (p2 + d4 * (p3 + d4 * p4));
    std::memcpy(r + g, &rv, 32);
  }
  for (int c = 0; c < C; ++c) {
    const double v = cubic(r[c], r[C + c], r[2 * C + c], r[3 * C + c], dy);
    o[c] = v <= 0.0 ? 0 : v >= 255.0 ? 255 : static_cast<uint8_t>(v);
  }
}

// Pillow's generic transform loop: each output pixel centre mapped through the affine matrix;
// pixels that land outside the input keep the fill colour; `sample(o, xin, yin)` fills the
// others from the input position shifted to pixel-centre coordinates.
template <class Sample>
__attribute__((always_inline)) inline void for_each_mapped_pixel(const cv::Mat& in, cv::Mat& out,
                                                                  const std::array<double, 6>& a, Sample sample) {
  const int W = in.cols, H = in.rows, C = in.channels();
  for (int y = 0; y < out.rows; ++y) {
    uint8_t* o = out.ptr<uint8_t>(y);
    for (int x = 0; x < out.cols; ++x) {
      const double xo = x + 0.5, yo = y + 0.5;
      const double xin = a[0] * xo + a[1] * yo + a[2];
      const double yin = a[3] * xo + a[4] * yo + a[5];
      if (xin < 0.0 || xin >= W || yin < 0.0 || yin >= H) continue;  // fill colour stays
      sample(o + x * C, xin - 0.5, yin - 0.5);
    }
  }
}

template <int C>
__attribute__((always_inline)) inline void affine_bicubic_rows(const cv::Mat& in, cv::Mat& out, const std::array<double, 6>& a) {
  const int W = in.cols, H = in.rows;
  for_each_mapped_pixel(in, out, a, [&](uint8_t* o, double xin, double yin) {
    const int xi = floor_int(xin) - 1, yi = floor_int(yin) - 1;
    const double dx = xin - (xi + 1), dy = yin - (yi + 1);
    const uint8_t* rows[4];
    rows[0] = in.ptr<uint8_t>(clip_index(yi, H));
    for (int j = 1; j < 4; ++j) rows[j] = (yi + j >= 0 && yi + j < H) ? in.ptr<uint8_t>(yi + j) : rows[j - 1];
    int xs[4];
    for (int j = 0; j < 4; ++j) xs[j] = clip_index(xi + j, W) * C;
    bicubic_pixel<C>(rows, xs, dx, dy, o);
  });
}

// Compiled twice (AVX2 and the x86-64 baseline), chosen when the program loads.
__attribute__((target_clones("avx2", "default"))) void affine_bicubic(const cv::Mat& in, cv::Mat& out,
                                                                       const std::array<double, 6>& a) {
  switch (in.channels()) {
    case 1: affine_bicubic_rows<1>(in, out, a); break;
    case 3: affine_bicubic_rows<3>(in, out, a); break;
    default: affine_bicubic_rows<4>(in, out, a); break;
  }
}

// Pillow's nearest affine: a pure scale/translate goes through ImagingScaleAffine, anything else
// through 16.16 fixed point when the corners fit (always, for images under 32768 pixels).
void affine_nearest(const cv::Mat& in, cv::Mat& out, const std::array<double, 6>& a) {
  const int C = in.channels(), W = in.cols, H = in.rows, OW = out.cols, OH = out.rows;
  auto put = [&](int y, int x, int yin, int xin) {
    std::copy_n(in.ptr<uint8_t>(yin) + static_cast<size_t>(xin) * C, C, out.ptr<uint8_t>(y) + static_cast<size_t>(x) * C);
  };
  if (a[1] == 0 && a[3] == 0) {
    std::vector<int> xin(OW);
    double xo = a[2] + a[0] * 0.5;
    for (int x = 0; x < OW; ++x) xin[x] = coord(xo), xo += a[0];
    double yo = a[5] + a[4] * 0.5;
    for (int y = 0; y < OH; ++y) {
      const int yi = coord(yo);
      if (yi >= 0 && yi < H)
        for (int x = 0; x < OW; ++x)
          if (xin[x] >= 0 && xin[x] < W) put(y, x, yi, xin[x]);
      yo += a[4];
    }
    return;
  }
  auto fits = [&](double x, double y) {
    return std::fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && std::fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
  };
  if (fits(0, 0) && fits(OW, OH) && fits(0, OH) && fits(OW, 0)) {
    auto fix = [](double v) { return floor_int(v * 65536.0 + 0.5); };
    const int a0 = fix(a[0]), a1 = fix(a[1]), a3 = fix(a[3]), a4 = fix(a[4]);
    int a2 = fix(a[2] + a[0] * 0.5 + a[1] * 0.5), a5 = fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
    for (int y = 0; y < OH; ++y) {
      int xx = a2, yy = a5;
      for (int x = 0; x < OW; ++x) {
        const int xi = xx >> 16;
        if (xi >= 0 && xi < W) {
          const int yi = yy >> 16;
          if (yi >= 0 && yi < H) put(y, x, yi, xi);
        }
        xx += a0, yy += a3;
      }
      a2 += a1, a5 += a4;
    }
    return;
  }
  double xo = a[2] + a[1] * 0.5 + a[0] * 0.5, yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
  for (int y = 0; y < OH; ++y) {
    double xx = xo, yy = yo;
    for (int x = 0; x < OW; ++x) {
      const int xi = coord(xx);
      if (xi >= 0 && xi < W) {
        const int yi = coord(yy);
        if (yi >= 0 && yi < H) put(y, x, yi, xi);
      }
      xx += a[0], yy += a[3];
    }
    xo += a[1], yo += a[4];
  }
}

std::array<uint8_t, 256> identity_lut() {
  std::array<uint8_t, 256> t{};
  for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>(i);
  return t;
}

// One table per channel.
cv::Mat point_per_channel(const cv::Mat& img, const std::vector<std::array<uint8_t, 256>>& luts) {
  cv::Mat src = continuous(img), out(img.size(), img.type());
  const int C = img.channels();
  const size_t n = img.total();
  const uint8_t* p = src.ptr<uint8_t>();
  uint8_t* o = out.ptr<uint8_t>();
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < C; ++c) o[i * C + c] = luts[c][p[i * C + c]];
  return out;
}

std::vector<std::array<int64_t, 256>> histograms(const cv::Mat& img) {
  cv::Mat src = continuous(img);
  const int C = img.channels();
  std::vector<std::array<int64_t, 256>> h(C);
  for (auto& x : h) x.fill(0);
  const uint8_t* p = src.ptr<uint8_t>();
  for (size_t i = 0; i < img.total(); ++i)
    for (int c = 0; c < C; ++c) ++h[c][p[i * C + c]];
  return h;
}

cv::Mat grey_as(const cv::Mat& g, int channels) {
  if (channels == 1) return g;
  std::vector<cv::Mat> planes(channels, g);
  cv::Mat out;
  cv::merge(planes, out);
  return out;
}

}  // namespace

cv::Mat resize(const cv::Mat& img_in, int width, int height, Filter filter) {
  check_image(img_in, "resize");
  if (width < 1 || height < 1) throw std::invalid_argument("pil::resize: width and height must be > 0");
  cv::Mat img = continuous(img_in);
  if (width == img.cols && height == img.rows) return img.clone();
  if (filter == Filter::nearest) {
    cv::Mat out(height, width, img.type(), cv::Scalar::all(0));
    affine_nearest(img, out, {static_cast<double>(img.cols) / width, 0, 0, 0, static_cast<double>(img.rows) / height, 0});
    return out;
  }
  const FilterDef fd = filter_def(filter);
  const bool need_h = width != img.cols, need_v = height != img.rows;
  const Coeffs vert = precompute(img.rows, 0.0, img.rows, height, fd);
  if (need_h && need_v && width > img.cols && height < img.rows) {
    // Widening while shortening, Pillow 13 runs the vertical pass first (the smaller intermediate
    // image); the order changes the rounding of the uint8 intermediate.
    cv::Mat temp = resample_vertical(img, vert, 0);
    return resample_horizontal(temp, 0, temp.rows, precompute(img.cols, 0.0, img.cols, width, fd));
  }
  const int yfirst = vert.first[0], ylast = vert.first[height - 1] + vert.count[height - 1];
  cv::Mat temp = img;
  int shift = 0;
  if (need_h) {
    temp = resample_horizontal(img, yfirst, ylast - yfirst, precompute(img.cols, 0.0, img.cols, width, fd));
    shift = yfirst;
  }
  return need_v ? resample_vertical(temp, vert, shift) : temp;
}

cv::Mat affine(const cv::Mat& img_in, const std::array<double, 6>& a, Filter filter, const cv::Scalar& fill) {
  check_image(img_in, "affine");
  cv::Mat in = continuous(img_in);
  cv::Mat out(in.size(), in.type(), fill);
  if (filter == Filter::nearest) {
    affine_nearest(in, out, a);
    return out;
  }
  if (filter != Filter::bilinear && filter != Filter::bicubic)
    throw std::invalid_argument("pil::affine: transforms take nearest, bilinear or bicubic (as in Pillow)");
  if (filter == Filter::bicubic) {
    affine_bicubic(in, out, a);
    return out;
  }
  const int C = in.channels(), W = in.cols, H = in.rows;
  for_each_mapped_pixel(in, out, a, [&](uint8_t* o, double xin, double yin) {  // bilinear
    const int xi = floor_int(xin), yi = floor_int(yin);
    const double dx = xin - xi, dy = yin - yi;
    const int x0 = clip_index(xi, W) * C, x1 = clip_index(xi + 1, W) * C;
    const uint8_t* r0 = in.ptr<uint8_t>(clip_index(yi, H));
    const bool has_r1 = yi + 1 >= 0 && yi + 1 < H;
    const uint8_t* r1 = has_r1 ? in.ptr<uint8_t>(yi + 1) : nullptr;
    for (int c = 0; c < C; ++c) {
      double v1 = r0[x0 + c] + (r0[x1 + c] - r0[x0 + c]) * dx;
      double v2 = has_r1 ? r1[x0 + c] + (r1[x1 + c] - r1[x0 + c]) * dx : v1;
      v1 = v1 + (v2 - v1) * dy;
      o[c] = static_cast<uint8_t>(v1);
    }
  });
  return out;
}

cv::Mat rotate(const cv::Mat& img, double degrees, Filter filter, const cv::Scalar& fill) {
  check_image(img, "rotate");
  double angle = std::fmod(degrees, 360.0);  // Python's float %: the sign of the divisor
  if (angle != 0 && angle < 0) angle += 360.0;
  if (angle == 0) return img.clone();
  cv::Mat out;
  if (angle == 180) {
    cv::rotate(img, out, cv::ROTATE_180);
    return out;
  }
  if ((angle == 90 || angle == 270) && img.cols == img.rows) {
    cv::rotate(img, out, angle == 90 ? cv::ROTATE_90_COUNTERCLOCKWISE : cv::ROTATE_90_CLOCKWISE);
    return out;
  }
  auto round15 = [](double v) {  // Python's round(v, 15): correctly rounded, as printf's %.15f
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.15f", v);
    return std::strtod(buf, nullptr);
  };
  const double cx = img.cols / 2.0, cy = img.rows / 2.0;
  const double rad = -(angle * (M_PI / 180.0));
  std::array<double, 6> m{round15(std::cos(rad)), round15(std::sin(rad)), 0.0,
                          round15(-std::sin(rad)), round15(std::cos(rad)), 0.0};
  const double tx = m[0] * -cx + m[1] * -cy + m[2], ty = m[3] * -cx + m[4] * -cy + m[5];
  m[2] = tx + cx, m[5] = ty + cy;
  return affine(img, m, filter, fill);
}

cv::Mat blend(const cv::Mat& a_in, const cv::Mat& b_in, double alpha_d) {
  check_image(a_in, "blend");
  if (a_in.size() != b_in.size() || a_in.type() != b_in.type())
    throw std::invalid_argument("pil::blend: the two images differ in size or type");
  const float alpha = static_cast<float>(alpha_d);  // Pillow takes a C float
  if (alpha == 0.0f) return a_in.clone();
  if (alpha == 1.0f) return b_in.clone();
  cv::Mat a = continuous(a_in), b = continuous(b_in), out(a.size(), a.type());
  const uint8_t *pa = a.ptr<uint8_t>(), *pb = b.ptr<uint8_t>();
  uint8_t* o = out.ptr<uint8_t>();
  const size_t n = a.total() * a.channels();
  for (size_t i = 0; i < n; ++i) {
    const float t = static_cast<float>(pa[i]) + alpha * static_cast<float>(static_cast<int>(pb[i]) - static_cast<int>(pa[i]));
    o[i] = t <= 0.0f ? 0 : t >= 255.0f ? 255 : static_cast<uint8_t>(t);
  }
  return out;
}

cv::Mat grey(const cv::Mat& rgb_in) {
  check_image(rgb_in, "grey");
  if (rgb_in.channels() == 1) return rgb_in;
  cv::Mat rgb = continuous(rgb_in), out(rgb.size(), CV_8UC1);
  const int C = rgb.channels();
  const uint8_t* p = rgb.ptr<uint8_t>();
  uint8_t* o = out.ptr<uint8_t>();
  for (size_t i = 0; i < rgb.total(); ++i, p += C)
    o[i] = static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
  return out;
}

cv::Mat point(const cv::Mat& img, const std::array<uint8_t, 256>& lut) {
  check_image(img, "point");
  return point_per_channel(img, std::vector<std::array<uint8_t, 256>>(img.channels(), lut));
}

cv::Mat autocontrast(const cv::Mat& img) {
  check_image(img, "autocontrast");
  std::vector<std::array<uint8_t, 256>> luts;
  for (const auto& h : histograms(img)) {
    int lo = 0, hi = 255;
    while (lo < 256 && h[lo] == 0) ++lo;
    while (hi >= 0 && h[hi] == 0) --hi;
    if (hi <= lo) {
      luts.push_back(identity_lut());
      continue;
    }
    const double scale = 255.0 / (hi - lo), offset = -lo * scale;
    std::array<uint8_t, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>(std::clamp(static_cast<int>(i * scale + offset), 0, 255));
    luts.push_back(t);
  }
  return point_per_channel(img, luts);
}

cv::Mat equalize(const cv::Mat& img) {
  check_image(img, "equalize");
  std::vector<std::array<uint8_t, 256>> luts;
  for (const auto& h : histograms(img)) {
    int64_t total = 0, last = 0, nonzero = 0;
    for (int i = 0; i < 256; ++i)
      if (h[i]) total += h[i], last = h[i], ++nonzero;
    const int64_t step = nonzero <= 1 ? 0 : (total - last) / 255;
    if (step == 0) {
      luts.push_back(identity_lut());
      continue;
    }
    std::array<uint8_t, 256> t{};
    int64_t n = step / 2;
    for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>(std::min<int64_t>(n / step, 255)), n += h[i];
    luts.push_back(t);
  }
  return point_per_channel(img, luts);
}

cv::Mat smooth(const cv::Mat& img_in) {
  check_image(img_in, "smooth");
  cv::Mat img = continuous(img_in);
  if (img.cols < 3 || img.rows < 3) return img.clone();
  const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
  const float k[9] = {k1, k1, k1, k1, k5, k1, k1, k1, k1};
  cv::Mat out = img.clone();  // border rows and columns keep their pixels
  const int C = img.channels(), W = img.cols;
  auto k3 = [&](const uint8_t* r, int x, const float* kk) {
    return static_cast<float>(r[x - C]) * kk[0] + static_cast<float>(r[x]) * kk[1] + static_cast<float>(r[x + C]) * kk[2];
  };
  for (int y = 1; y < img.rows - 1; ++y) {
    const uint8_t *up = img.ptr<uint8_t>(y - 1), *mid = img.ptr<uint8_t>(y), *down = img.ptr<uint8_t>(y + 1);
    uint8_t* o = out.ptr<uint8_t>(y);
    for (int x = 1; x < W - 1; ++x)
      for (int c = 0; c < C; ++c) {
        const int i = x * C + c;
        float ss = 0.5f;
        ss += k3(down, i, &k[0]);
        ss += k3(mid, i, &k[3]);
        ss += k3(up, i, &k[6]);
        ss = ss < 0.0f ? 0.0f : ss;
        ss = ss > 255.0f ? 255.0f : ss;
        o[i] = static_cast<uint8_t>(ss);
      }
  }
  return out;
}

cv::Mat enhance_color(const cv::Mat& img, double factor) {
  if (img.channels() == 1) return img.clone();
  return blend(grey_as(grey(img), img.channels()), img, factor);
}

cv::Mat enhance_contrast(const cv::Mat& img, double factor) {
  const cv::Mat g = grey(img);
  const auto h = histograms(g)[0];
  int64_t sum = 0;
  for (int i = 0; i < 256; ++i) sum += i * h[i];
  const int mean = static_cast<int>(static_cast<double>(sum) / static_cast<double>(g.total()) + 0.5);
  return blend(cv::Mat(img.size(), img.type(), cv::Scalar::all(mean)), img, factor);
}

cv::Mat enhance_brightness(const cv::Mat& img, double factor) {
  return blend(cv::Mat::zeros(img.size(), img.type()), img, factor);
}

cv::Mat enhance_sharpness(const cv::Mat& img, double factor) { return blend(smooth(img), img, factor); }

}  // namespace dyt::pil
