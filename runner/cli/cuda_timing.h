// GPU time of a call measured between two CUDA events, after a cache flush; shared by
// `dyt bench` and the kernel check program (header only, LibTorch only).
#pragma once

#include <functional>
#include <vector>

#ifdef DYT_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace dyt {

#ifdef DYT_WITH_CUDA
// `repeats` samples in ms: flush() (e.g. a fill larger than the L2, which also keeps the GPU busy
// while the CPU enqueues fn), then fn() between two events on the device's current stream.
inline std::vector<double> cuda_event_samples_ms(const std::function<void()>& fn,
                                                 const std::function<void()>& flush, int64_t repeats,
                                                 c10::DeviceIndex device) {
  std::vector<double> samples;
  auto stream = c10::cuda::getCurrentCUDAStream(device);
  for (int64_t r = 0; r < repeats; ++r) {
    flush();
    at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
    start.record(stream);
    fn();
    stop.record(stream);
    stop.synchronize();
    samples.push_back(start.elapsed_time(stop));
  }
  return samples;
}
#endif

}  // namespace dyt
