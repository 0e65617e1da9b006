// Runs the suite's image ops on one image for golden/pixels_vs_timm.py, one command per stdin line,
// writing each result as a lossless PNG into OUT_DIR:
//   load NAME                                  the image as the ImageFolder reader decodes it
//   resize NAME W H FILTER                     pil::resize
//   crop NAME LEFT TOP W H SIZE FILTER         resized_crop (RandomResizedCrop at a fixed box)
//   eval NAME SIZE CROP_PCT FILTER             the evaluation transform's pixels
//   op NAME OP ARG FILTER R G B                one RandAugment op with its argument and fill
//   region NAME LEFT TOP W H                   the box decoded alone (jpeg::decode_region; JPEG only)
//   arg OP LEVEL NEGATE                        prints "arg OP LEVEL NEGATE VALUE" (level -> argument)
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <iostream>
#include <random>
#include <sstream>
#include <string>

#include "datasets/dataset.h"
#include "datasets/jpeg.h"
#include "datasets/pil_image.h"
#include "datasets/transforms.h"

using namespace dyt;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s IMAGE OUT_DIR < commands\n", argv[0]);
    return 2;
  }
  const cv::Mat img = read_rgb_image(argv[1]);
  const std::string out_dir = argv[2];
  auto save = [&](const std::string& name, const cv::Mat& rgb) {
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    if (!cv::imwrite(out_dir + "/" + name + ".png", bgr)) throw std::runtime_error("cannot write " + name);
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, name;
    in >> cmd;
    if (cmd.empty()) continue;
    if (cmd == "arg") {
      std::string op;
      double level;
      int negate;
      in >> op >> level >> negate;
      std::printf("arg %s %g %d %.17g\n", op.c_str(), level, negate, rand_augment_arg(op, level, negate != 0));
      continue;
    }
    in >> name;
    if (cmd == "load") {
      save(name, img);
    } else if (cmd == "region") {
      cv::Rect box;
      in >> box.x >> box.y >> box.width >> box.height;
      std::ifstream f(argv[1], std::ios::binary);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      const jpeg::Region r = jpeg::decode_region(bytes, box);
      save(name, r.rgb(cv::Rect(box.x - r.origin.x, box.y - r.origin.y, box.width, box.height)));
    } else if (cmd == "resize") {
      int w, h;
      std::string f;
      in >> w >> h >> f;
      save(name, pil::resize(img, w, h, pil::filter_named(f)));
    } else if (cmd == "crop") {
      int left, top, w, h, size;
      std::string f;
      in >> left >> top >> w >> h >> size >> f;
      save(name, resized_crop(img, cv::Rect(left, top, w, h), size, f));
    } else if (cmd == "eval") {
      int size;
      AugmentOptions o;
      in >> size >> o.crop_pct >> o.interpolation;
      ImageTransform t(o, false, size, 3, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225});
      std::mt19937_64 rng(0);
      save(name, t.pixels(img, rng));
    } else if (cmd == "op") {
      std::string op, f;
      double arg;
      int r, g, b;
      in >> op >> arg >> f >> r >> g >> b;
      save(name, rand_augment_op(img, op, arg, cv::Scalar(r, g, b), f));
    } else {
      std::fprintf(stderr, "unknown command '%s'\n", cmd.c_str());
      return 2;
    }
  }
  return 0;
}
