// Readers on files the test writes in the real formats, errors on truncated or corrupt files,
// transforms, and the loader's determinism.
#include <gtest/gtest.h>
#include <fstream>
#include <iterator>
#include <set>
#include <map>
#include <numeric>
#include <thread>
#include <chrono>
#include <mutex>
#include <torch/torch.h>
#include <zlib.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "datasets/dataset.h"
#include "datasets/jpeg.h"
#include "datasets/loader.h"
#include "datasets/pil_image.h"
#include "datasets/transforms.h"
#include "test_util.h"

using namespace dyt;
using dyt::test::TempDir;
using dyt::test::write_file;

namespace {

std::string be32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string idx_images(int n, int h, int w, int seed) {
  std::string s = std::string("\0\0\x08\x03", 4) + be32(n) + be32(h) + be32(w);
  for (int i = 0; i < n * h * w; ++i) s += static_cast<char>((i * 7 + seed) % 256);
  return s;
}

std::string idx_labels(int n) {
  std::string s = std::string("\0\0\x08\x01", 4) + be32(n);
  for (int i = 0; i < n; ++i) s += static_cast<char>(i % 10);
  return s;
}

void write_gz(const std::filesystem::path& p, const std::string& bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}


DatasetPtr open(const std::string& type, const std::string& root, const std::string& split) {
  DatasetRequest r;
  r.root = root, r.split = split;
  return dataset_registry().get(type).open(r);
}

}  // namespace

TEST(Idx, ReadsGzAndRawFashionMnistLayout) {
  TempDir d;
  write_gz(d / "train-images-idx3-ubyte.gz", idx_images(12, 28, 28, 3));
  write_gz(d / "train-labels-idx1-ubyte.gz", idx_labels(12));
  write_file(d / "t10k-images-idx3-ubyte", idx_images(5, 28, 28, 1));  // raw, no .gz
  write_file(d / "t10k-labels-idx1-ubyte", idx_labels(5));
  auto train = open("fashion_mnist", d.path().string(), "train");
  auto val = open("fashion_mnist", d.path().string(), "val");
  EXPECT_EQ(train->size(), 12);
  EXPECT_EQ(val->size(), 5);
  EXPECT_EQ(train->num_classes(), 10);
  EXPECT_EQ(train->channels(), 1);
  ImageSample s = train->get(3);
  EXPECT_EQ(s.label, 3);
  EXPECT_EQ(s.image.rows, 28);
  const int i = 3 * 784 + 1 * 28 + 5;  // image 3, row 1, column 5
  EXPECT_EQ(s.image.at<uint8_t>(1, 5), static_cast<uint8_t>((i * 7 + 3) % 256));
}

TEST(Idx, TruncatedAndCorruptFilesNameTheFile) {
  TempDir d;
  std::string img = idx_images(10, 28, 28, 0);
  write_file(d / "short-images-idx3-ubyte", img.substr(0, img.size() - 100));
  std::string msg = dyt::test::error_of<DataError>([&] { read_idx((d / "short-images-idx3-ubyte").string()); });
  EXPECT_NE(msg.find("short-images-idx3-ubyte: truncated or padded: the header promises 7840 bytes of data, the file holds 7740"),
            std::string::npos)
      << msg;
  // A gzip stream cut in the middle.
  write_gz(d / "full.gz", img);
  {
    std::ifstream in(d / "full.gz", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    write_file(d / "cut-images-idx3-ubyte.gz", bytes.substr(0, bytes.size() / 2));
  }
  msg = dyt::test::error_of<DataError>([&] { read_idx((d / "cut-images-idx3-ubyte.gz").string()); });
  EXPECT_NE(msg.find("cut-images-idx3-ubyte.gz"), std::string::npos) << msg;
  write_file(d / "junk", "hello world, not idx");
  msg = dyt::test::error_of<DataError>([&] { read_idx((d / "junk").string()); });
  EXPECT_NE(msg.find("junk: not an IDX file"), std::string::npos) << msg;
  msg = dyt::test::error_of<DataError>([&] { open("fashion_mnist", (d / "nowhere").string(), "train"); });
  EXPECT_NE(msg.find("no train-images-idx3-ubyte[.gz]; set data.root"), std::string::npos) << msg;
}

TEST(Cifar, ReadsBinaryBatchesAndRejectsTruncated) {
  TempDir d;
  auto record = [](int label, int seed) {
    std::string r(1, static_cast<char>(label));
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) r += static_cast<char>((c * 50 + p + seed) % 256);
    return r;
  };
  for (int b = 1; b <= 5; ++b) write_file(d / "cifar-10-batches-bin" / ("data_batch_" + std::to_string(b) + ".bin"), record(b, b) + record(9, 0));
  write_file(d / "cifar-10-batches-bin" / "test_batch.bin", record(4, 7));
  auto train = open("cifar10", d.path().string(), "train");
  EXPECT_EQ(train->size(), 10);
  ImageSample s = train->get(2);  // first record of batch 2
  EXPECT_EQ(s.label, 2);
  EXPECT_EQ(s.image.channels(), 3);
  // Planes become interleaved RGB: pixel (0, 1) channel G = (50 + 1 + 2) % 256.
  EXPECT_EQ(s.image.at<cv::Vec3b>(0, 1)[1], 53);
  write_file(d / "cifar-10-batches-bin" / "test_batch.bin", record(4, 7).substr(0, 2000));
  std::string msg = dyt::test::error_of<DataError>([&] { open("cifar10", d.path().string(), "val"); });
  EXPECT_NE(msg.find("test_batch.bin: 2000 bytes is not a whole number of 3073-byte records"), std::string::npos) << msg;
}

TEST(ImageFolder, ReadsClassFoldersAndReportsCorruptImages) {
  TempDir d;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 2; ++i) {
      cv::Mat img(20 + i, 30, CV_8UC3, cv::Scalar(c * 40, 10, 200));  // BGR on disk
      auto p = d / "train" / ("class" + std::to_string(c)) / ("img" + std::to_string(i) + ".png");
      std::filesystem::create_directories(p.parent_path());
      cv::imwrite(p.string(), img);
    }
  auto ds = open("image_folder", d.path().string(), "train");
  EXPECT_EQ(ds->size(), 6);
  EXPECT_EQ(ds->num_classes(), 3);
  ImageSample s = ds->get(5);
  EXPECT_EQ(s.label, 2);
  EXPECT_EQ(s.image.at<cv::Vec3b>(0, 0)[0], 200);  // converted to RGB
  write_file(d / "train" / "class1" / "broken.jpg", "\xff\xd8\xff not really a jpeg");
  auto ds2 = open("image_folder", d.path().string(), "train");
  std::string msg;
  for (int64_t i = 0; i < ds2->size(); ++i) {
    std::string m = dyt::test::error_of<DataError>([&] { ds2->get(i); });
    if (!m.empty()) msg = m;
  }
  EXPECT_NE(msg.find("broken.jpg: cannot decode the image"), std::string::npos) << msg;
  msg = dyt::test::error_of<DataError>([&] { open("image_folder", d.path().string(), "val"); });
  EXPECT_NE(msg.find("no such folder"), std::string::npos) << msg;
}

// The training crop decodes only its region of a JPEG (datasets/jpeg.h): the region's pixels must
// equal a full decode's (4:2:0, grey, progressive here; 4:2:2 and 4:4:4 against Pillow in
// golden.pixels_equal_timm_and_pil, which makes them with Pillow), and the
// transform's output must equal the whole-file path's for the same generator.
TEST(Data, JpegRegionDecodeEqualsTheFullDecode) {
  TempDir d;
  cv::Mat img(157, 203, CV_8UC3);  // odd sizes: partial iMCUs on the right and bottom
  cv::randu(img, 0, 255);
  cv::GaussianBlur(img, img, cv::Size(7, 7), 2.0);  // photo-like: compressible, still textured
  struct Layout {
    const char* name;
    std::vector<int> params;
    bool grey;
  };
  const std::vector<Layout> layouts = {
      {"420", {cv::IMWRITE_JPEG_QUALITY, 90}, false},  // OpenCV 4.6 writes 4:2:0 (4:2:2, 4:4:4: golden.pixels_*)
      {"progressive", {cv::IMWRITE_JPEG_QUALITY, 80, cv::IMWRITE_JPEG_PROGRESSIVE, 1}, false},
      {"grey", {cv::IMWRITE_JPEG_QUALITY, 90}, true}};
  AugmentOptions o;
  o.train_crop = "random_resized", o.hflip = 0.5, o.randaugment = "rand-m9-mstd0.5-inc1", o.random_erasing = 0.25;
  o.interpolation = "bicubic";
  ImageTransform tf(o, true, 48, 3, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225});
  for (const auto& l : layouts) {
    const std::string path = (d.path() / (std::string(l.name) + ".jpg")).string();
    cv::Mat src = img;
    if (l.grey) cv::cvtColor(img, src, cv::COLOR_BGR2GRAY);
    ASSERT_TRUE(cv::imwrite(path, src, l.params)) << l.name;
    std::ifstream f(path, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const jpeg::Info info = jpeg::probe(bytes);
    ASSERT_TRUE(info.supported) << l.name;
    ASSERT_EQ(info.width, 203);
    ASSERT_EQ(info.height, 157);
    const cv::Mat full = read_rgb_image(path);
    std::mt19937 rng(1);
    for (int t = 0; t < 60; ++t) {
      const int w = 1 + static_cast<int>(rng() % 203), h = 1 + static_cast<int>(rng() % 157);
      const cv::Rect box(static_cast<int>(rng() % (203 - w + 1)), static_cast<int>(rng() % (157 - h + 1)), w, h);
      const jpeg::Region r = jpeg::decode_region(bytes, box);
      ASSERT_LE(r.origin.x, box.x);
      const cv::Mat got = r.rgb(cv::Rect(box.x - r.origin.x, box.y - r.origin.y, w, h));
      ASSERT_EQ(cv::norm(got, full(box), cv::NORM_INF), 0.0) << l.name << " box " << box;
    }
    for (uint64_t seed = 0; seed < 8; ++seed) {
      std::vector<float> a(3 * 48 * 48), b(3 * 48 * 48);
      std::mt19937_64 ra(seed), rb(seed);
      ASSERT_TRUE(tf.from_jpeg(bytes, path, ra, a.data())) << l.name;
      tf(full, rb, b.data());
      ASSERT_EQ(a, b) << l.name << " seed " << seed;
      ASSERT_EQ(ra(), rb()) << "the two paths draw the same random numbers";
    }
  }
  // Not a JPEG libjpeg reads: the transform declines and leaves the generator alone; the loader
  // then decodes the ordinary way, whose error names the file.
  std::vector<uint8_t> junk = {0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3};
  std::mt19937_64 r1(3), r2(3);
  std::vector<float> out(3 * 48 * 48);
  EXPECT_FALSE(tf.from_jpeg(junk, "junk.jpg", r1, out.data()));
  EXPECT_EQ(r1(), r2());
  const std::string msg = dyt::test::error_of<DataError>([&] { decode_rgb_image(junk, "junk.jpg"); });
  EXPECT_NE(msg.find("junk.jpg: cannot decode the image"), std::string::npos) << msg;
  EXPECT_THROW(jpeg::decode_region(junk, cv::Rect(0, 0, 1, 1)), std::runtime_error);
}

TEST(Transforms, EvalResizesAndCropsTrainAugmentsDeterministically) {
  cv::Mat img(40, 60, CV_8UC3);
  cv::randu(img, 0, 255);
  AugmentOptions o;
  o.train_crop = "random_resized";
  o.hflip = 0.5;
  o.randaugment = "rand-m9-mstd0.5-inc1";
  o.random_erasing = 0.5;
  ImageTransform train(o, true, 32, 3, {0.5}, {0.25});
  ImageTransform eval(o, false, 32, 3, {0.5}, {0.25});
  std::vector<float> a(3 * 32 * 32), b(3 * 32 * 32), c(3 * 32 * 32);
  std::mt19937_64 r1(7), r2(7), r3(8);
  train(img, r1, a.data());
  train(img, r2, b.data());
  train(img, r3, c.data());
  EXPECT_EQ(a, b);  // same generator, same result
  EXPECT_NE(a, c);
  eval(img, r1, a.data());
  std::mt19937_64 r4(99);
  eval(img, r4, b.data());
  EXPECT_EQ(a, b);  // evaluation is not random
  cv::Mat flat(32, 32, CV_8UC1, cv::Scalar(128));
  ImageTransform grey(AugmentOptions{}, false, 32, 1, {0.5}, {0.25});
  std::vector<float> g(32 * 32);
  grey(flat, r1, g.data());
  EXPECT_NEAR(g[0], (128 / 255.0 - 0.5) / 0.25, 1e-5);
  EXPECT_THROW(parse_randaugment("rand-x9"), std::invalid_argument);
  RandAugmentSpec spec = parse_randaugment("rand-m9-mstd0.5-inc1");
  EXPECT_EQ(spec.magnitude, 9);
  EXPECT_EQ(spec.magnitude_std, 0.5);
  EXPECT_TRUE(spec.increasing);
}

// Pillow works channel by channel: a grey or RGBA image through the vectorised resampling and
// bicubic affine paths gives, per channel, the bits of the RGB path that
// golden.pixels_equal_timm_and_pil checks against Pillow (one template per channel count).
TEST(Transforms, PillowOpsGiveEachChannelTheRgbPathsPixels) {
  cv::Mat rgb(53, 71, CV_8UC3);
  cv::randu(rgb, 0, 256);
  cv::Mat alpha(53, 71, CV_8UC1);
  cv::randu(alpha, 0, 256);
  std::vector<cv::Mat> ch;
  cv::split(rgb, ch);
  cv::Mat rgba;
  cv::merge(std::vector<cv::Mat>{ch[0], ch[1], ch[2], alpha}, rgba);
  const cv::Scalar fill(9, 99, 199, 250);
  auto ops = std::vector<std::pair<std::string, std::function<cv::Mat(const cv::Mat&)>>>{
      {"resize down", [](const cv::Mat& m) { return pil::resize(m, 31, 22, pil::Filter::bicubic); }},
      {"resize up and down", [](const cv::Mat& m) { return pil::resize(m, 140, 40, pil::Filter::lanczos); }},
      {"rotate bicubic", [&](const cv::Mat& m) { return pil::rotate(m, 27.0, pil::Filter::bicubic, fill); }},
      {"shear bicubic",
       [&](const cv::Mat& m) { return pil::affine(m, {1, 0.3, -5, 0.1, 1, 3}, pil::Filter::bicubic, fill); }},
  };
  for (const auto& [name, op] : ops) {
    const cv::Mat out3 = op(rgb), out4 = op(rgba);
    std::vector<cv::Mat> c3, c4;
    cv::split(out3, c3);
    cv::split(out4, c4);
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(cv::norm(c3[c], c4[c], cv::NORM_INF), 0.0) << name << ", channel " << c << ": RGB vs RGBA";
    if (name.rfind("resize", 0) == 0)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(cv::norm(c3[c], op(ch[c]), cv::NORM_INF), 0.0) << name << ", channel " << c << ": RGB vs grey";
  }
  // Grey through the affine paths: each channel of the RGB result with that channel's fill.
  for (int c = 0; c < 3; ++c) {
    const cv::Scalar f(fill[c]);
    std::vector<cv::Mat> r3;
    cv::split(pil::rotate(rgb, 27.0, pil::Filter::bicubic, fill), r3);
    EXPECT_EQ(cv::norm(r3[c], pil::rotate(ch[c], 27.0, pil::Filter::bicubic, f), cv::NORM_INF), 0.0) << "rotate grey " << c;
    cv::split(pil::affine(rgb, {1, 0.3, -5, 0.1, 1, 3}, pil::Filter::bicubic, fill), r3);
    EXPECT_EQ(cv::norm(r3[c], pil::affine(ch[c], {1, 0.3, -5, 0.1, 1, 3}, pil::Filter::bicubic, f), cv::NORM_INF), 0.0)
        << "shear grey " << c;
  }
}

TEST(Loader, SameBatchesWhateverTheWorkersAndResumable) {
  DatasetRequest r;
  r.synthetic_size = 100, r.synthetic_image = 8, r.synthetic_channels = 3, r.split = "train";
  auto ds = dataset_registry().get("synthetic").open(r);
  AugmentOptions o;
  o.hflip = 0.5;
  auto tf = std::make_shared<ImageTransform>(o, true, 8, 3, std::vector<double>{0.5}, std::vector<double>{0.25});
  auto collect = [&](int64_t workers, int64_t epoch, int64_t first) {
    LoaderOptions lo;
    lo.batch_size = 16, lo.workers = workers, lo.seed = 3;
    Loader l(ds, tf, lo);
    l.start_epoch(epoch, first);
    std::vector<torch::Tensor> out;
    Batch b;
    while (l.next(b)) out.push_back(torch::cat({b.images.flatten(), b.labels.to(torch::kFloat)}));
    return out;
  };
  auto a = collect(0, 1, 0), b = collect(3, 1, 0), c = collect(2, 1, 4), other = collect(1, 2, 0);
  ASSERT_EQ(a.size(), 6u);  // 100 / 16, last partial batch dropped
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
  ASSERT_EQ(c.size(), 2u);
  EXPECT_TRUE(torch::equal(c[0], a[4]));  // resuming at batch 4 yields batches 4, 5
  EXPECT_FALSE(torch::equal(other[0], a[0]));  // another epoch, another order
}

// Per-sample parallelism: a batch filled in parts is filled by several workers at once (the
// batch the consumer waits for first), gives the items built whole, and a part's error reaches
// the consumer. Checked to fail: with parts_ forced to 1 the "threads per item" expectation
// fails (one worker per item); with the fill's slice bounds off by one the items differ.
TEST(Loader, PrefetcherFillsOneBatchWithSeveralWorkers) {
  const int64_t items = 6, size = 24, parts = 8;
  auto whole = [&](int64_t i) {
    std::vector<int64_t> v(size);
    for (int64_t k = 0; k < size; ++k) v[k] = i * 1000 + k * k;
    return v;
  };
  std::mutex mu;
  std::map<int64_t, std::set<std::thread::id>> who;  // item -> the threads that filled it
  Prefetcher<std::vector<int64_t>> q(4, 2);
  q.start_parts(
      0, items, [&](int64_t) { return std::vector<int64_t>(size, -1); },
      [&](int64_t i, std::vector<int64_t>& v, int64_t p, int64_t n) {
        for (int64_t k = size * p / n; k < size * (p + 1) / n; ++k) v[k] = i * 1000 + k * k;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        std::lock_guard<std::mutex> lock(mu);
        who[i].insert(std::this_thread::get_id());
      },
      parts);
  std::vector<int64_t> got;
  for (int64_t i = 0; i < items; ++i) {
    ASSERT_TRUE(q.next(got));
    EXPECT_EQ(got, whole(i)) << "item " << i;
  }
  EXPECT_FALSE(q.next(got));
  int64_t shared = 0;
  for (const auto& [i, threads] : who) shared += threads.size() > 1;
  EXPECT_GE(shared, items / 2) << "items filled by more than one worker";

  // Whole items and the calling thread (workers 0) give the same items.
  Prefetcher<std::vector<int64_t>> q0(0, 2);
  q0.start_parts(
      2, items, [&](int64_t) { return std::vector<int64_t>(size, -1); },
      [&](int64_t i, std::vector<int64_t>& v, int64_t p, int64_t n) {
        for (int64_t k = size * p / n; k < size * (p + 1) / n; ++k) v[k] = i * 1000 + k * k;
      },
      parts);
  ASSERT_TRUE(q0.next(got));
  EXPECT_EQ(got, whole(2));

  // An error in one part stops the round and is rethrown to the consumer; stop() mid-round joins.
  Prefetcher<std::vector<int64_t>> qe(3, 4);
  qe.start_parts(
      0, items, [&](int64_t) { return std::vector<int64_t>(size, 0); },
      [&](int64_t i, std::vector<int64_t>&, int64_t p, int64_t) {
        if (i == 1 && p == 5) throw DataError("part 5 of item 1 is corrupt");
      },
      parts);
  EXPECT_THROW(
      {
        while (qe.next(got)) {
        }
      },
      DataError);
  qe.stop();
  qe.start_parts(0, items, [&](int64_t i) { return whole(i); }, nullptr, parts);
  ASSERT_TRUE(qe.next(got));
  EXPECT_EQ(got, whole(0));
  qe.stop();
}

TEST(Loader, AutoWorkersShareTheCoresAmongTheNodesProcesses) {
  EXPECT_EQ(auto_loader_workers(false, 16, 1), 1);  // CPU training: the trainer's threads use the cores
  EXPECT_EQ(auto_loader_workers(true, 16, 1), 15);  // one GPU: every core but the training thread's
  EXPECT_EQ(auto_loader_workers(true, 128, 8), 15);  // 8 GPUs on a 128-core node
  EXPECT_EQ(auto_loader_workers(true, 4, 8), 1);     // never fewer than one
  EXPECT_EQ(parts_per_batch(256, 15), 60);
  EXPECT_EQ(parts_per_batch(16, 8), 16);  // at least one sample per part
  EXPECT_EQ(parts_per_batch(256, 0), 4);
}

TEST(Loader, ShardsAcrossRanksWithoutOverlap) {
  DatasetRequest r;
  r.synthetic_size = 40, r.synthetic_image = 4, r.synthetic_channels = 1, r.synthetic_classes = 40, r.split = "train";
  auto ds = dataset_registry().get("synthetic").open(r);
  auto tf = std::make_shared<ImageTransform>(AugmentOptions{}, false, 4, 1, std::vector<double>{0.5}, std::vector<double>{0.25});
  std::set<int64_t> seen;
  for (int64_t rank = 0; rank < 4; ++rank) {
    LoaderOptions lo;
    lo.batch_size = 10, lo.workers = 0, lo.rank = rank, lo.world = 4;
    Loader l(ds, tf, lo);
    l.start_epoch(0);
    Batch b;
    while (l.next(b))
      for (int64_t i = 0; i < b.labels.size(0); ++i) EXPECT_TRUE(seen.insert(b.labels[i].item<int64_t>()).second);
  }
  EXPECT_EQ(seen.size(), 40u);  // synthetic labels are i % 40: every sample exactly once
}

// Evaluation shards (pad_shards = false) split any data set exactly: 10 samples over 4 ranks is
// 3 + 3 + 2 + 2, nothing twice (training pads each shard to ceil(10 / 4) = 3 by wrapping).
TEST(Loader, EvaluationShardsSplitExactlyTrainingShardsPad) {
  for (bool pad : {false, true}) {
    std::vector<int64_t> all;
    std::vector<size_t> sizes;
    for (int64_t rank = 0; rank < 4; ++rank) {
      auto o = epoch_order(10, 7, 0, true, rank, 4, pad);
      sizes.push_back(o.size());
      all.insert(all.end(), o.begin(), o.end());
    }
    std::sort(all.begin(), all.end());
    if (pad) {
      EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 3, 3}));
      EXPECT_EQ(std::set<int64_t>(all.begin(), all.end()).size(), 10u);
    } else {
      EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 2, 2}));
      std::vector<int64_t> want(10);
      std::iota(want.begin(), want.end(), 0);
      EXPECT_EQ(all, want);
    }
  }
}

// World-size invariance of the data: the b-th batches of 2 ranks x 8 together are the b-th batch
// of 1 process x 16, with the same pixels (a sample's augmentation is seeded by seed, epoch and
// its index, not by the rank or the loader thread).
TEST(Loader, RanksTogetherSeeTheOneProcessGlobalBatchWithTheSamePixels) {
  DatasetRequest r;
  r.synthetic_size = 64, r.synthetic_image = 8, r.synthetic_channels = 1, r.synthetic_classes = 64, r.split = "train";
  auto ds = dataset_registry().get("synthetic").open(r);
  AugmentOptions aug;
  aug.train_crop = "random_resized", aug.hflip = 0.5;
  auto tf = std::make_shared<ImageTransform>(aug, true, 8, 1, std::vector<double>{0.5}, std::vector<double>{0.25});
  auto batches = [&](int64_t batch, int64_t rank, int64_t world, int64_t workers) {
    LoaderOptions lo;
    lo.batch_size = batch, lo.workers = workers, lo.rank = rank, lo.world = world, lo.seed = 3;
    Loader l(ds, tf, lo);
    l.start_epoch(2);
    std::vector<Batch> out;
    Batch b;
    while (l.next(b)) out.push_back(b);
    return out;
  };
  auto one = batches(16, 0, 1, 0), r0 = batches(8, 0, 2, 2), r1 = batches(8, 1, 2, 1);
  ASSERT_EQ(one.size(), 4u);
  ASSERT_EQ(r0.size(), 4u);
  ASSERT_EQ(r1.size(), 4u);
  for (size_t b = 0; b < one.size(); ++b) {
    // Match samples by label (synthetic labels are the sample index here).
    std::map<int64_t, torch::Tensor> global;
    for (int64_t i = 0; i < 16; ++i) global[one[b].labels[i].item<int64_t>()] = one[b].images[i];
    for (const auto* part : {&r0[b], &r1[b]})
      for (int64_t i = 0; i < 8; ++i) {
        auto it = global.find(part->labels[i].item<int64_t>());
        ASSERT_NE(it, global.end()) << "batch " << b;
        EXPECT_TRUE(torch::equal(it->second, part->images[i])) << "batch " << b;
        global.erase(it);
      }
    EXPECT_TRUE(global.empty());
  }
}

TEST(Loader, EmptyDatasetAndWorkerErrorsSurface) {
  TempDir d;
  write_file(d / "train-images-idx3-ubyte", idx_images(0, 28, 28, 0));
  write_file(d / "train-labels-idx1-ubyte", idx_labels(0));
  auto ds = open("fashion_mnist", d.path().string(), "train");
  auto tf = std::make_shared<ImageTransform>(AugmentOptions{}, false, 28, 1, std::vector<double>{0.5}, std::vector<double>{0.25});
  std::string msg = dyt::test::error_of<DataError>([&] { Loader l(ds, tf, LoaderOptions{}); });
  EXPECT_NE(msg.find("the data set is empty"), std::string::npos) << msg;
}
