// Image data set readers: idx (MNIST family), CIFAR binary, image folders (OpenCV), synthetic; the dataset registry.
#include <fmt/format.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "datasets/audio.h"
#include "datasets/dataset.h"

namespace dyt {
namespace fs = std::filesystem;

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw DataError(fmt::format("{}: cannot open the image file", path));
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

cv::Mat decode_rgb_image(const std::vector<uint8_t>& bytes, const std::string& path) {
  cv::Mat bgr = bytes.empty() ? cv::Mat() : cv::imdecode(bytes, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  if (bgr.empty())
    throw DataError(fmt::format("{}: cannot decode the image (corrupt or truncated); remove or replace the file", path));
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

cv::Mat read_rgb_image(const std::string& path) { return decode_rgb_image(read_file_bytes(path), path); }

namespace {

std::vector<uint8_t> read_maybe_gz(const std::string& path) {
  if (!fs::exists(path)) throw DataError(fmt::format("{}: file not found", path));
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files transparently
  if (!f) throw DataError(fmt::format("{}: cannot open (permissions?)", path));
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(1 << 20);
  while (true) {
    int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      throw DataError(fmt::format("{}: corrupt or truncated gzip data ({}); download the file again", path, msg));
    }
    if (n == 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  int err = Z_OK;
  gzerror(f, &err);
  gzclose(f);
  if (err != Z_OK && err != Z_STREAM_END)  // e.g. Z_BUF_ERROR: the stream ends mid-way
    throw DataError(fmt::format("{}: corrupt or truncated gzip data (the stream ends early); download the file again", path));
  return out;
}

// ---- MNIST / Fashion-MNIST ---------------------------------------------------------------------------
class IdxDataset : public ImageDataset {
 public:
  IdxDataset(const std::string& root, const std::string& split) {
    const std::string prefix = split == "train" ? "train" : "t10k";
    const std::string images = find(root, prefix + "-images-idx3-ubyte");
    const std::string labels = find(root, prefix + "-labels-idx1-ubyte");
    IdxArray im = read_idx(images), lb = read_idx(labels);
    if (im.dims.size() != 3) throw DataError(fmt::format("{}: expected a 3-D image array, found {}-D", images, im.dims.size()));
    if (lb.dims.size() != 1) throw DataError(fmt::format("{}: expected a 1-D label array, found {}-D", labels, lb.dims.size()));
    if (im.dims[0] != lb.dims[0])
      throw DataError(fmt::format("{} has {} images but {} has {} labels; the files do not belong together", images,
                                  im.dims[0], labels, lb.dims[0]));
    n_ = im.dims[0], h_ = im.dims[1], w_ = im.dims[2];
    pixels_ = std::move(im.data);
    labels_ = std::move(lb.data);
    for (uint8_t l : labels_) classes_ = std::max<int64_t>(classes_, l + 1);
    desc_ = fmt::format("idx {} split of {} ({} images {}x{}, {} classes)", split, root, n_, h_, w_, classes_);
  }
  int64_t size() const override { return n_; }
  ImageSample get(int64_t i) const override {
    cv::Mat img(static_cast<int>(h_), static_cast<int>(w_), CV_8UC1);
    std::memcpy(img.data, pixels_.data() + i * h_ * w_, h_ * w_);
    return {img, labels_[i]};
  }
  int64_t num_classes() const override { return classes_; }
  int64_t channels() const override { return 1; }
  int64_t native_size() const override { return h_ == w_ ? h_ : 0; }
  std::string describe() const override { return desc_; }

 private:
  static std::string find(const std::string& root, const std::string& stem) {
    for (const char* ext : {".gz", ""}) {
      fs::path p = fs::path(root) / (stem + ext);
      if (fs::exists(p)) return p.string();
    }
    throw DataError(fmt::format("{}: no {}[.gz]; set data.root to the folder holding the MNIST-format files{}", root,
                                stem, root.find("fashion") != std::string::npos ? " (Debian: apt-get install dataset-fashion-mnist)" : ""));
  }
  int64_t n_ = 0, h_ = 0, w_ = 0, classes_ = 0;
  std::vector<uint8_t> pixels_, labels_;
  std::string desc_;
};

// ---- CIFAR binary ---------------------------------------------------------------------------------------
class CifarDataset : public ImageDataset {
 public:
  CifarDataset(const std::string& root_in, const std::string& split, bool hundred) : hundred_(hundred) {
    std::string root = root_in;
    const char* sub = hundred ? "cifar-100-binary" : "cifar-10-batches-bin";
    if (fs::exists(fs::path(root) / sub)) root = (fs::path(root) / sub).string();
    std::vector<std::string> files;
    if (hundred) files = {split == "train" ? "train.bin" : "test.bin"};
    else if (split == "train") files = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
    else files = {"test_batch.bin"};
    const int64_t rec = record_size();
    for (const auto& name : files) {
      const std::string path = (fs::path(root) / name).string();
      if (!fs::exists(path))
        throw DataError(fmt::format("{}: not found; set data.root to the folder of the CIFAR-{} binary version", path,
                                    hundred ? 100 : 10));
      std::vector<uint8_t> bytes = read_maybe_gz(path);
      if (bytes.empty() || bytes.size() % rec != 0)
        throw DataError(fmt::format("{}: {} bytes is not a whole number of {}-byte records; the file is truncated or "
                                    "not the binary version",
                                    path, bytes.size(), rec));
      data_.insert(data_.end(), bytes.begin(), bytes.end());
    }
    n_ = static_cast<int64_t>(data_.size()) / rec;
    desc_ = fmt::format("CIFAR-{} {} split of {} ({} images)", hundred ? 100 : 10, split, root, n_);
  }
  int64_t size() const override { return n_; }
  ImageSample get(int64_t i) const override {
    const uint8_t* r = data_.data() + i * record_size();
    int64_t label = hundred_ ? r[1] : r[0];
    const uint8_t* px = r + (hundred_ ? 2 : 1);
    cv::Mat img(32, 32, CV_8UC3);
    for (int p = 0; p < 1024; ++p)
      for (int c = 0; c < 3; ++c) img.data[p * 3 + c] = px[c * 1024 + p];  // planes -> interleaved RGB
    return {img, label};
  }
  int64_t num_classes() const override { return hundred_ ? 100 : 10; }
  int64_t channels() const override { return 3; }
  int64_t native_size() const override { return 32; }
  std::string describe() const override { return desc_; }

 private:
  int64_t record_size() const { return hundred_ ? 3074 : 3073; }
  bool hundred_;
  int64_t n_ = 0;
  std::vector<uint8_t> data_;
  std::string desc_;
};

// ---- ImageFolder ----------------------------------------------------------------------------------------
class ImageFolderDataset : public ImageDataset {
 public:
  ImageFolderDataset(const std::string& root, const std::string& split) {
    fs::path dir = fs::path(root) / split;
    if (!fs::is_directory(dir)) {
      if (split == "val" && fs::is_directory(fs::path(root) / "validation")) dir = fs::path(root) / "validation";
      else
        throw DataError(fmt::format("{}: no such folder; an image_folder root holds train/ and val/, each with one "
                                    "sub-folder per class (set data.root)",
                                    dir.string()));
    }
    std::vector<std::string> classes;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory()) classes.push_back(e.path().filename().string());
    std::sort(classes.begin(), classes.end());
    if (classes.empty()) throw DataError(fmt::format("{}: no class sub-folders", dir.string()));
    for (size_t c = 0; c < classes.size(); ++c) {
      std::vector<std::string> files;
      for (const auto& e : fs::recursive_directory_iterator(dir / classes[c])) {
        if (!e.is_regular_file()) continue;
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
        if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp" || ext == ".tif" ||
            ext == ".tiff" || ext == ".ppm" || ext == ".pgm")
          files.push_back(e.path().string());
      }
      std::sort(files.begin(), files.end());
      for (auto& f : files) items_.emplace_back(std::move(f), static_cast<int64_t>(c));
    }
    if (items_.empty()) throw DataError(fmt::format("{}: the class folders hold no images (.jpg/.png/...)", dir.string()));
    classes_ = static_cast<int64_t>(classes.size());
    desc_ = fmt::format("image folder {} ({} images, {} classes)", dir.string(), items_.size(), classes_);
  }
  int64_t size() const override { return static_cast<int64_t>(items_.size()); }
  ImageSample get(int64_t i) const override {
    const auto& [path, label] = items_[i];
    return {read_rgb_image(path), label};
  }
  bool encoded(int64_t i, EncodedSample& out) const override {
    out.path = items_[i].first, out.label = items_[i].second;
    out.bytes = read_file_bytes(out.path);
    return true;
  }
  int64_t num_classes() const override { return classes_; }
  int64_t channels() const override { return 3; }
  int64_t native_size() const override { return 0; }
  std::string describe() const override { return desc_; }

 private:
  std::vector<std::pair<std::string, int64_t>> items_;
  int64_t classes_ = 0;
  std::string desc_;
};

// ---- synthetic ---------------------------------------------------------------------------------------------
// Each class has a fixed random template; a sample is its template plus per-sample noise, so a
// model can learn it and a test can tell learning from chance.
class SyntheticDataset : public ImageDataset {
 public:
  explicit SyntheticDataset(const DatasetRequest& r)
      : n_(r.synthetic_size), classes_(r.synthetic_classes), side_(r.synthetic_image), ch_(r.synthetic_channels),
        seed_(r.seed + (r.split == "train" ? 0 : 7919)) {
    std::mt19937_64 rng(r.seed * 1000003 + 17);
    std::uniform_int_distribution<int> u(0, 255);
    templates_.resize(classes_ * side_ * side_ * ch_);
    for (auto& v : templates_) v = static_cast<uint8_t>(u(rng));
  }
  int64_t size() const override { return n_; }
  ImageSample get(int64_t i) const override {
    const int64_t label = i % classes_;
    std::mt19937_64 rng(seed_ * 2654435761ULL + static_cast<uint64_t>(i));
    std::normal_distribution<float> noise(0.f, 40.f);
    cv::Mat img(static_cast<int>(side_), static_cast<int>(side_), ch_ == 1 ? CV_8UC1 : CV_8UC3);
    const uint8_t* t = templates_.data() + label * side_ * side_ * ch_;
    for (int64_t k = 0; k < side_ * side_ * ch_; ++k)
      img.data[k] = cv::saturate_cast<uint8_t>(t[k] + noise(rng));
    return {img, label};
  }
  int64_t num_classes() const override { return classes_; }
  int64_t channels() const override { return ch_; }
  int64_t native_size() const override { return side_; }
  std::string describe() const override {
    return fmt::format("synthetic ({} images {}x{}x{}, {} classes)", n_, side_, side_, ch_, classes_);
  }

 private:
  int64_t n_, classes_, side_, ch_;
  uint64_t seed_;
  std::vector<uint8_t> templates_;
};

class SliceDataset : public ImageDataset {
 public:
  SliceDataset(DatasetPtr base, int64_t begin, int64_t n) : base_(std::move(base)), begin_(begin), n_(n) {}
  int64_t size() const override { return n_; }
  ImageSample get(int64_t i) const override { return base_->get(begin_ + i); }
  bool encoded(int64_t i, EncodedSample& out) const override { return base_->encoded(begin_ + i, out); }
  int64_t num_classes() const override { return base_->num_classes(); }
  int64_t channels() const override { return base_->channels(); }
  int64_t native_size() const override { return base_->native_size(); }
  std::string describe() const override {
    if (begin_ == 0) return fmt::format("first {} of {}", n_, base_->describe());
    return fmt::format("samples {}..{} of {}", begin_, begin_ + n_ - 1, base_->describe());
  }

 private:
  DatasetPtr base_;
  int64_t begin_, n_;
};

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

Registry<DatasetType> build_dataset_registry() {
  Registry<DatasetType> r("dataset");
  const std::vector<double> grey_mean{0.2860}, grey_std{0.3530};
  r.add("fashion_mnist", {"Fashion-MNIST, 28x28 grey, 10 classes (idx files)", "/usr/share/datasets/fashion-mnist",
                          grey_mean, grey_std,
                          [](const DatasetRequest& q) -> DatasetPtr { return std::make_shared<IdxDataset>(q.root, q.split); },
                          {}, "image", true});
  r.add("mnist", {"MNIST, 28x28 grey, 10 classes (idx files)", "/usr/share/datasets/mnist", {0.1307}, {0.3081},
                  [](const DatasetRequest& q) -> DatasetPtr { return std::make_shared<IdxDataset>(q.root, q.split); },
                  {}, "image", true});
  r.add("cifar10", {"CIFAR-10 binary version, 32x32 RGB", "", {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616},
                    [](const DatasetRequest& q) -> DatasetPtr { return std::make_shared<CifarDataset>(q.root, q.split, false); },
                    {}, "image", true});
  r.add("cifar100", {"CIFAR-100 binary version, 32x32 RGB, fine labels", "", {0.5071, 0.4865, 0.4409}, {0.2673, 0.2564, 0.2762},
                     [](const DatasetRequest& q) -> DatasetPtr { return std::make_shared<CifarDataset>(q.root, q.split, true); },
                     {}, "image", true});
  r.add("image_folder", {"ImageNet-style tree: root/{train,val}/<class>/<image> (libjpeg-turbo / OpenCV decoding, EXIF orientation not applied, as in Pillow)", "",
                         {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225},
                         [](const DatasetRequest& q) -> DatasetPtr { return std::make_shared<ImageFolderDataset>(q.root, q.split); }});
  DatasetType audio;
  audio.help = "speech: fairseq manifests <root>/train.tsv and valid.tsv (dyt data speech / dyt data manifest)";
  audio.kind = "audio";
  audio.open_audio = [](const DatasetRequest& q) -> std::shared_ptr<const AudioDataset> {
    if (q.root.empty()) throw DataError("audio_manifest: data.root is not set; give the folder holding the manifests");
    return std::make_shared<AudioDataset>((std::filesystem::path(q.root) / q.manifest).string(), q.min_samples, 16000);
  };
  r.add("audio_manifest", audio);
  r.add("synthetic", {"generated class templates plus noise (tests, benchmarks)", "", {0.5}, {0.25},
                      [](const DatasetRequest& q) -> DatasetPtr { return std::make_shared<SyntheticDataset>(q); }});
  return r;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  std::vector<uint8_t> bytes = read_maybe_gz(path);
  if (bytes.size() < 4) throw DataError(fmt::format("{}: {} bytes is too short for an IDX header", path, bytes.size()));
  if (bytes[0] != 0 || bytes[1] != 0)
    throw DataError(fmt::format("{}: not an IDX file (bad magic number); expected MNIST-format data", path));
  if (bytes[2] != 0x08)
    throw DataError(fmt::format("{}: IDX element type 0x{:02x} is not unsigned byte (0x08)", path, bytes[2]));
  const int ndim = bytes[3];
  if (ndim < 1 || ndim > 4) throw DataError(fmt::format("{}: IDX with {} dimensions is not supported", path, ndim));
  const size_t header = 4 + 4 * static_cast<size_t>(ndim);
  if (bytes.size() < header) throw DataError(fmt::format("{}: truncated IDX header", path));
  IdxArray a;
  size_t count = 1;
  for (int d = 0; d < ndim; ++d) {
    a.dims.push_back(static_cast<int32_t>(be32(bytes.data() + 4 + 4 * d)));
    count *= static_cast<size_t>(a.dims.back());
  }
  if (bytes.size() - header != count)
    throw DataError(fmt::format("{}: truncated or padded: the header promises {} bytes of data, the file holds {}; "
                                "download it again",
                                path, count, bytes.size() - header));
  a.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return a;
}

const Registry<DatasetType>& dataset_registry() {
  static const Registry<DatasetType> registry = build_dataset_registry();
  return registry;
}

DatasetPtr subset(DatasetPtr base, int64_t n) {
  if (n <= 0 || n >= base->size()) return base;
  return std::make_shared<SliceDataset>(std::move(base), 0, n);
}

DatasetPtr slice(DatasetPtr base, int64_t begin, int64_t n) {
  if (begin < 0 || n < 0 || begin + n > base->size())
    throw DataError(fmt::format("samples {}..{} are outside {} ({} samples)", begin, begin + n - 1, base->describe(),
                                base->size()));
  if (begin == 0 && n == base->size()) return base;
  return std::make_shared<SliceDataset>(std::move(base), begin, n);
}

}  // namespace dyt
