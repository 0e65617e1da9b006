// Image data for the image tasks (classification, MAE): opens the configured data set's train
// and val splits (or, with data.holdout, train / held-out validation / test), checks them against the model's input (size, channels), and builds the
// transforms and loaders.
#pragma once

#include <memory>
#include <string>

#include "datasets/loader.h"
#include "runner/experiment/experiment.h"

namespace dyt {

struct ImageData {
  std::unique_ptr<Loader> train, val;
  // The data set's own test split when the validation split is held out of the training set
  // (data.holdout > 0): measured once, after training. Null otherwise.
  std::unique_ptr<Loader> test;
  DatasetPtr val_set;
  std::string val_source;  // what the validation split is, e.g. "held out: last 10% of the training set"
  int64_t num_classes = 0, image_size = 0, channels = 0;
  std::vector<double> mean, std;  // the normalisation applied (per channel)
  std::string description;
  int64_t workers = 0;  // loader threads used (data.workers resolved)
};

// `cuda`: batches go to a GPU (page-locked host batches; data.workers -1 resolves for a GPU).
ImageData open_image_data(const ExperimentConfig& cfg, int64_t model_img_size, int64_t model_in_chans, int64_t rank,
                          int64_t world, uint64_t seed, bool cuda = false);

// data.workers with -1 (auto) resolved for this process (auto_loader_workers, LOCAL_WORLD_SIZE
// from the launcher).
int64_t resolved_workers(const ExperimentConfig& cfg, bool cuda);

// The validation fraction data.holdout resolves to for this data set (-1 = auto).
double resolved_holdout(const ExperimentConfig& cfg);

}  // namespace dyt
