// Task `mae`: masked-autoencoder pretraining. The loss is the model's masked-patch MSE; the
// evaluation is the same loss on the validation split with a fixed mask per image (its own
// generator, so evaluating does not move the training's random stream). At the end it writes
// reconstruction.png: per image, original | masked input | reconstruction | reconstruction
// with the visible patches pasted back, as in the MAE paper's figures.
#include <fmt/format.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "runner/run/run_folder.h"
#include "models/mae.h"
#include "runner/tasks/image_data.h"
#include "runner/tasks/task.h"
#include "runner/train/loop.h"

namespace dyt {
namespace fs = std::filesystem;
using json = nlohmann::json;
using torch::Tensor;

namespace {

// Fixed per-image mask noise for evaluation and pictures.
Tensor eval_noise(int64_t batch_index, int64_t n, int64_t L) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(1000003 + batch_index));
  return torch::rand({n, L}, gen, torch::TensorOptions().dtype(torch::kFloat));
}

cv::Mat to_image(const Tensor& chw, const std::vector<double>& mean, const std::vector<double>& stdv, int scale) {
  const int64_t C = chw.size(0), H = chw.size(1), W = chw.size(2);
  Tensor t = chw.detach().to(torch::kCPU, torch::kFloat).clone();
  for (int64_t c = 0; c < C; ++c) t[c].mul_(stdv[c]).add_(mean[c]);
  t = (t.clamp(0, 1) * 255).round().to(torch::kByte).permute({1, 2, 0}).contiguous();
  cv::Mat img(static_cast<int>(H), static_cast<int>(W), C == 1 ? CV_8UC1 : CV_8UC3, t.data_ptr());
  cv::Mat out;
  cv::resize(img, out, cv::Size(), scale, scale, cv::INTER_NEAREST);
  if (C == 3) cv::cvtColor(out, out, cv::COLOR_RGB2BGR);
  return out.clone();
}

void write_reconstructions(MAEImpl& model, Loader& val, const std::vector<double>& mean, const std::vector<double>& stdv,
                           const torch::Device& device, const fs::path& file) {
  torch::NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  val.start_epoch(0);
  Batch b;
  if (!val.next(b)) return;
  const int64_t n = std::min<int64_t>(8, b.images.size(0));
  Tensor imgs = b.images.slice(0, 0, n).to(device);
  const int64_t L = model.patch_embed->num_patches;
  auto out = model.forward(imgs, model.opts.mask_ratio, eval_noise(0, n, L).to(device));
  Tensor pred = out.pred.to(torch::kFloat);
  if (model.opts.norm_pix_loss) {  // back from normalised-patch space with each patch's own statistics
    Tensor t = model.patchify(imgs);
    pred = pred * torch::sqrt(t.var(-1, true, true) + 1e-6) + t.mean(-1, true);
  }
  const int64_t pdim = pred.size(2);
  Tensor mask = out.mask.unsqueeze(-1).expand({n, L, pdim});
  Tensor recon = model.unpatchify(pred);
  // Removed patches are zeros in normalised space: the data set's mean colour in the picture.
  Tensor masked_in = model.unpatchify(model.patchify(imgs) * (1 - mask));
  Tensor pasted = model.unpatchify(model.patchify(imgs) * (1 - mask) + pred * mask);
  const int scale = std::max<int>(1, static_cast<int>(112 / imgs.size(2)));
  std::vector<cv::Mat> rows;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<cv::Mat> cols = {to_image(imgs[i], mean, stdv, scale), to_image(masked_in[i], mean, stdv, scale),
                                 to_image(recon[i], mean, stdv, scale), to_image(pasted[i], mean, stdv, scale)};
    for (auto& c : cols) cv::copyMakeBorder(c, c, 2, 2, 2, 2, cv::BORDER_CONSTANT, cv::Scalar::all(255));
    cv::Mat row;
    cv::hconcat(cols, row);
    rows.push_back(row);
  }
  // Column labels above the grid (the paper's Fig. 2 of MAE: original, masked, reconstruction,
  // reconstruction with the visible patches pasted back).
  const int cell_w = rows[0].cols / 4;
  const double font = 0.4;
  const char* labels[] = {"original", "masked input", "reconstruction", "recon. + visible"};
  cv::Mat header(22, rows[0].cols, rows[0].type(), cv::Scalar::all(255));
  for (int c = 0; c < 4; ++c) {
    int baseline = 0;
    cv::Size sz = cv::getTextSize(labels[c], cv::FONT_HERSHEY_SIMPLEX, font, 1, &baseline);
    const double f = sz.width > cell_w - 4 ? font * (cell_w - 4) / sz.width : font;  // shrink to the column
    sz = cv::getTextSize(labels[c], cv::FONT_HERSHEY_SIMPLEX, f, 1, &baseline);
    cv::putText(header, labels[c], cv::Point(c * cell_w + std::max(0, (cell_w - sz.width) / 2), 15),
                cv::FONT_HERSHEY_SIMPLEX, f, cv::Scalar::all(0), 1, cv::LINE_AA);
  }
  rows.insert(rows.begin(), header);
  cv::Mat grid;
  cv::vconcat(rows, grid);
  std::vector<uchar> png;
  cv::imencode(".png", grid, png);
  atomic_write(file, std::string(png.begin(), png.end()));
  model.train(was_training);
}

}  // namespace

namespace {

class MaeTask : public Task {
 public:
  explicit MaeTask(RunContext& ctx) : Task(ctx) {
    mo_ = dynamic_cast<const MAEOptions*>(&cfg_.model());
    if (!mo_) throw ConfigError(Origin{}, "model.type", "task: mae needs model.type: mae");
  }
  void open_data() override {
    data_ = open_image_data(cfg_, mo_->img_size, mo_->in_chans, ctx_.rank, ctx_.world, static_cast<uint64_t>(spec_.seed),
                            ctx_.device.is_cuda());
  }
  std::string data_description() const override { return data_.description; }
  int64_t steps_per_epoch() const override { return data_.train->batches_per_epoch(); }
  void start_epoch(int64_t epoch, int64_t first) override { data_.train->start_epoch(epoch, first); }

  bool next_loss(int64_t, StepResult& r, int64_t& index) override {
    Batch b;
    if (!data_.train->next(b)) return false;
    index = b.index;
    Tensor x = b.images.to(device_, true);
    AutocastGuard ac(precision_, device_.type());
    r.loss = mae().forward(x, mo_->mask_ratio).loss;
    r.samples = x.size(0);
    return true;
  }

  json evaluate(int64_t) override {
    torch::NoGradGuard ng;
    auto& model = mae();
    model.eval();
    AutocastGuard ac(precision_, device_.type());
    data_.val->start_epoch(0);
    Batch b;
    double sum = 0;
    int64_t n = 0;
    while (data_.val->next(b)) {
      Tensor x = b.images.to(device_, true);
      Tensor noise = eval_noise(b.index, x.size(0), model.patch_embed->num_patches).to(device_);
      sum += model.forward(x, mo_->mask_ratio, noise).loss.item<double>() * static_cast<double>(x.size(0));
      n += x.size(0);
    }
    model.train();
    const std::vector<double> t = sum_over_ranks({sum, static_cast<double>(n)});
    return json{{"loss", t[0] / std::max(1.0, t[1])}, {"n", static_cast<int64_t>(t[1])}};
  }

  std::vector<MetricInfo> metrics() const override {
    return {{"loss", "validation loss (MSE on masked patches)", false}};
  }
  std::string train_loss_display() const override {
    const auto* mo = dynamic_cast<const MAEOptions*>(&cfg_.model());
    return mo && mo->norm_pix_loss ? "training loss (MSE on masked patches, per-patch normalised pixels)"
                                     : "training loss (MSE on masked patches)";
  }

  void finalize(json&) override {
    save_final_weights(spec_.dir, model(), nullptr, cfg_.model().interop_config());
    write_reconstructions(mae(), *data_.val, data_.mean, data_.std, device_, spec_.dir / "reconstruction.png");
  }

 private:
  MAEImpl& mae() { return model_as<MAEImpl>("a masked autoencoder"); }
  const MAEOptions* mo_ = nullptr;
  ImageData data_;
};

}  // namespace

std::unique_ptr<Task> make_mae_task(RunContext& ctx) { return std::make_unique<MaeTask>(ctx); }

}  // namespace dyt
