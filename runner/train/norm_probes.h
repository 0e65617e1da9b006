// The paper's analyses of what normalization layers do:
//  - capture_norm_mapping: the input -> output (before the affine) points of every norm layer on
//    validation data (Fig. 2/4), saved for plotting, with a per-layer summary: the R^2 of a
//    straight line through them, and a fitted a * tanh(b * x) with the fraction of points in its
//    near-linear part (|b x| <= 0.5, where tanh(z) stays within 8 % of z).
//  - alpha_invstd_correlation: Pearson correlation of DyT's alpha with 1 / std of its input across
//    layers (Fig. 8), from a "norms" metrics line.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

namespace dyt {

struct TanhFit {
  double a = 0, b = 0, near_linear = 0, linear_r2 = 0;
};
// Least-squares fit of y ~ a * tanh(b * x) over a log grid of b (a in closed form), plus the
// fraction with |b x| <= 0.5 and the R^2 of the best straight line.
TanhFit fit_tanh(const torch::Tensor& x, const torch::Tensor& y);

// Runs `run_batch(i)` (a forward pass on validation batch i; false when there are no more)
// with capture hooks on every norm layer of `model`, keeps up to `max_points` random points per
// layer, writes them to `file` (safetensors: <layer>.x, <layer>.y, <layer>.channel) and returns
// the per-layer summary.
nlohmann::json capture_norm_mapping(torch::nn::Module& model, const std::function<bool(int64_t)>& run_batch,
                                    int64_t max_points, const std::filesystem::path& file);

// corr(alpha, 1 / input_std) over the layers of a {"split": "norms"} line that have an alpha.
double alpha_invstd_correlation(const nlohmann::json& norms_line);

}  // namespace dyt
