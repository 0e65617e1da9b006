// What the machine is: LibTorch build, devices, BLAS backend, threads and a measured
// matrix-product rate, so a slow run can be told from a slow machine. Written into every run's
// env.json and printed by `dyt env`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dyt {

// measure: also time a 1024^3 fp32 matrix product (about a second on 2 cores).
nlohmann::json environment_info(bool measure, const std::vector<std::string>& argv = {});
std::string format_environment(const nlohmann::json& env);

}  // namespace dyt
