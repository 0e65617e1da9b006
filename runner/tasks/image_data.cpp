// Opens an image data set's splits for the image tasks: checks, transforms, loaders (image_data.h).
#include "runner/tasks/image_data.h"

#include <fmt/format.h>

#include <cmath>
#include <thread>

#include "core/distributed.h"

namespace dyt {

double resolved_holdout(const ExperimentConfig& cfg) {
  if (cfg.data.holdout >= 0) return cfg.data.holdout;
  return dataset_registry().get(cfg.data.dataset).val_is_test ? 0.1 : 0.0;
}

int64_t resolved_workers(const ExperimentConfig& cfg, bool cuda) {
  if (cfg.data.workers >= 0) return cfg.data.workers;
  return auto_loader_workers(cuda, static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency())),
                             read_dist_env().local_world);
}

ImageData open_image_data(const ExperimentConfig& cfg, int64_t model_img_size, int64_t model_in_chans, int64_t rank,
                          int64_t world, uint64_t seed, bool cuda) {
  const DatasetType& dtype = dataset_registry().get(cfg.data.dataset);
  if (dtype.kind != "image")
    throw ConfigError(Origin{}, "data.dataset",
                      fmt::format("'{}' holds {}, not images; task {} needs an image data set", cfg.data.dataset, dtype.kind, cfg.task));
  DatasetRequest req;
  req.root = cfg.data.root.empty() ? dtype.default_root : resolve_data_path(cfg.data.root).string();
  if (req.root.empty() && cfg.data.dataset != "synthetic")
    throw ConfigError(Origin{}, "data.root",
                      fmt::format("data set '{}' has no default location; set data.root (e.g. --set data.root=/path)",
                                  cfg.data.dataset));
  req.synthetic_classes = cfg.data.synthetic_classes, req.synthetic_image = cfg.data.synthetic_image;
  req.synthetic_channels = cfg.data.synthetic_channels;
  req.split = "train";
  req.synthetic_size = cfg.data.synthetic_size;
  DatasetPtr full_train = dtype.open(req);
  req.split = "val";
  req.synthetic_size = std::max<int64_t>(cfg.data.synthetic_size / 4, 1);
  DatasetPtr second = dtype.open(req);
  const std::string second_name = dtype.val_is_test ? "test" : "validation";

  ImageData d;
  DatasetPtr train_set, val_set, test_set;
  const double holdout = resolved_holdout(cfg);
  if (holdout > 0) {
    // The last `holdout` of the training set (no shuffling: the same samples for every run and
    // seed); train_subset then takes the first N of what remains.
    const int64_t n = full_train->size();
    const int64_t held = std::max<int64_t>(1, static_cast<int64_t>(std::llround(holdout * static_cast<double>(n))));
    if (held >= n)
      throw ConfigError(Origin{}, "data.holdout",
                        fmt::format("holding out {} of {} training samples leaves none to train on; lower data.holdout", held, n));
    train_set = subset(slice(full_train, 0, n - held), cfg.data.train_subset);
    val_set = subset(slice(full_train, n - held, held), cfg.data.val_subset);
    test_set = second;
    d.val_source = fmt::format("held out: {}the last {} of the {} training samples (data.holdout {}); the {} split ({} samples) "
                               "is measured once after training",
                               val_set->size() < held ? fmt::format("the first {} of ", val_set->size()) : "", held, n,
                               holdout, second_name, second->size());
  } else {
    train_set = subset(full_train, cfg.data.train_subset);
    val_set = subset(second, cfg.data.val_subset);
    d.val_source = fmt::format("the data set's {} split ({} samples){}", second_name, val_set->size(),
                               dtype.val_is_test ? "; no held-out validation (data.holdout 0): model selection sees the test set"
                                                 : "");
  }

  d.image_size = cfg.data.image_size > 0 ? cfg.data.image_size : train_set->native_size();
  if (d.image_size <= 0)
    throw ConfigError(Origin{}, "data.image_size", "the images of " + train_set->describe() + " vary in size; set data.image_size");
  if (d.image_size != model_img_size)
    throw ConfigError(Origin{}, "model.img_size",
                      fmt::format("the model expects {} px images but the data are {} px; set model.img_size: {} or "
                                  "data.image_size: {}",
                                  model_img_size, d.image_size, d.image_size, model_img_size));
  d.channels = train_set->channels();
  if (model_in_chans != d.channels)
    throw ConfigError(Origin{}, "model.in_chans",
                      fmt::format("the data have {} channel(s) but model.in_chans is {}; set model.in_chans: {}",
                                  d.channels, model_in_chans, d.channels));
  d.num_classes = train_set->num_classes();
  const auto mean = cfg.data.mean.empty() ? dtype.mean : cfg.data.mean;
  const auto stdv = cfg.data.std.empty() ? dtype.std : cfg.data.std;
  auto train_tf = std::make_shared<ImageTransform>(cfg.data.augment, true, d.image_size, d.channels, mean, stdv);
  auto eval_tf = std::make_shared<ImageTransform>(cfg.data.augment, false, d.image_size, d.channels, mean, stdv);
  LoaderOptions lo;
  d.workers = resolved_workers(cfg, cuda);
  lo.batch_size = cfg.data.batch_size, lo.workers = d.workers, lo.prefetch = cfg.data.prefetch;
  lo.seed = seed, lo.rank = rank, lo.world = world, lo.pin_memory = cuda;
  d.train = std::make_unique<Loader>(train_set, train_tf, lo);
  d.train->start_epoch(0);
  lo.shuffle = false, lo.drop_last = false, lo.pad_shards = false;  // each sample evaluated once over the ranks
  lo.batch_size = cfg.data.eval_batch_size > 0 ? cfg.data.eval_batch_size : cfg.data.batch_size;
  d.val = std::make_unique<Loader>(val_set, eval_tf, lo);
  if (test_set) d.test = std::make_unique<Loader>(test_set, eval_tf, lo);
  d.val_set = val_set;
  d.mean = mean.size() == 1 ? std::vector<double>(d.channels, mean[0]) : mean;
  d.std = stdv.size() == 1 ? std::vector<double>(d.channels, stdv[0]) : stdv;
  d.description = train_set->describe();
  if (cfg.data.workers < 0) d.description += fmt::format("; loader threads: {} (auto)", d.workers);
  return d;
}

}  // namespace dyt
