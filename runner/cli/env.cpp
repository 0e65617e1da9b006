// What `dyt env` and env.json report: LibTorch build, BLAS, threads, devices, a measured matmul rate.
#include "core/distributed.h"
#include "runner/cli/env.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <regex>

#include "models/norm/dyt_op.h"
#include "runner/experiment/experiment.h"
#ifdef DYT_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace dyt {
using json = nlohmann::json;

namespace {

std::string capture(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string config_field(const std::string& config, const std::string& key) {
  std::smatch m;
  std::regex re(key + "=([^,\\n]*)");
  return std::regex_search(config, m, re) ? m[1].str() : "";
}

}  // namespace

json environment_info(bool measure, const std::vector<std::string>& argv) {
  json j;
  const std::string cfg = torch::show_config();
  j["libtorch"] = TORCH_VERSION;
  j["libtorch_cuda"] = config_field(cfg, "CUDA_VERSION");
  j["blas"] = config_field(cfg, "BLAS_INFO");
  std::smatch m;
  if (std::regex_search(cfg, m, std::regex("CPU capability usage: (\\w+)"))) j["aten_cpu_capability"] = m[1].str();
  j["dyt_cpu_kernels"] = dyt_cpu_isa();
  j["dyt_cuda_kernels"] = dyt_cuda_compiled();
  j["threads"] = at::get_num_threads();
  j["interop_threads"] = at::get_num_interop_threads();
  j["cpu_cores"] = static_cast<int64_t>(::sysconf(_SC_NPROCESSORS_ONLN));
  j["data_parallel"] = distributed_support();
  j["cuda_available"] = torch::cuda::is_available();
  j["cuda_devices"] = json::array();
#ifdef DYT_WITH_CUDA
  if (torch::cuda::is_available()) {
    for (int64_t d = 0; d < static_cast<int64_t>(torch::cuda::device_count()); ++d) {
      cudaDeviceProp p{};
      if (cudaGetDeviceProperties(&p, static_cast<int>(d)) == cudaSuccess)
        j["cuda_devices"].push_back({{"name", p.name}, {"memory_gib", p.totalGlobalMem / 1073741824.0},
                                     {"sm", fmt::format("{}.{}", p.major, p.minor)}});
    }
  }
#endif
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  j["hostname"] = host;
  std::time_t now = std::time(nullptr);
  char ts[64];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  j["time"] = ts;
  const std::string home = suite_home().string();
  j["git_revision"] = capture("git -C '" + home + "' rev-parse --short HEAD 2>/dev/null");
  j["git_dirty"] = !capture("git -C '" + home + "' status --porcelain --untracked-files=no 2>/dev/null").empty();
  if (!argv.empty()) j["argv"] = argv;
  if (measure) {
    torch::NoGradGuard no_grad;
    torch::Tensor a = torch::randn({1024, 1024}), b = torch::randn({1024, 1024});
    torch::mm(a, b);  // warm-up
    std::vector<double> times;
    for (int i = 0; i < 5; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      torch::mm(a, b);
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    j["matmul_fp32_gflops"] = 2.0 * 1024 * 1024 * 1024 / times[times.size() / 2] / 1e9;
  }
  return j;
}

std::string format_environment(const json& j) {
  std::string out;
  out += fmt::format("LibTorch        {} (CUDA {})\n", j["libtorch"].get<std::string>(),
                     j["libtorch_cuda"].get<std::string>().empty() ? "none" : j["libtorch_cuda"].get<std::string>());
  out += fmt::format("BLAS            {}\n", j["blas"].get<std::string>());
  out += fmt::format("ATen CPU ISA    {}\n", j.value("aten_cpu_capability", "?"));
  out += fmt::format("DyT kernels     CPU {}, CUDA {}\n", j["dyt_cpu_kernels"].get<std::string>(),
                     j["dyt_cuda_kernels"].get<bool>() ? "compiled" : "not compiled");
  if (j.contains("data_parallel")) out += fmt::format("data parallel   {}\n", j["data_parallel"].get<std::string>());
  out += fmt::format("threads         {} intra-op, {} inter-op, {} cores\n", j["threads"].get<int64_t>(),
                     j["interop_threads"].get<int64_t>(), j["cpu_cores"].get<int64_t>());
  if (j["cuda_available"].get<bool>()) {
    for (const auto& d : j["cuda_devices"])
      out += fmt::format("CUDA device     {} ({:.0f} GiB, sm {})\n", d["name"].get<std::string>(),
                         d["memory_gib"].get<double>(), d["sm"].get<std::string>());
    if (j["cuda_devices"].empty()) out += "CUDA device     available\n";
  } else {
    out += "CUDA device     none\n";
  }
  if (j.contains("matmul_fp32_gflops"))
    out += fmt::format("matmul fp32     {:.1f} GFLOP/s (1024^3, median of 5)\n", j["matmul_fp32_gflops"].get<double>());
  out += fmt::format("git             {}{}\n", j["git_revision"].get<std::string>(), j["git_dirty"].get<bool>() ? " (modified)" : "");
  return out;
}

}  // namespace dyt
