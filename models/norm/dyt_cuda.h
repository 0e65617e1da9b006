// Fused DyT CUDA kernels (dyt_cuda.cu). Raw pointers and a cudaStream_t passed as void*, so this
// header and the .cu file need no LibTorch header. Arithmetic is fp32 for every storage type.
//   forward:  y = w[c] * tanh(alpha * x) + b[c]
//   backward: dx = dy * w[c] * alpha * (1 - t^2); dw[c] = sum dy * t; db[c] = sum dy;
//             dalpha = sum dy * w[c] * x * (1 - t^2). Sums go through per-block partials written
//             to `workspace` and a second kernel (deterministic, no global atomics).
// Layout: `outer` x C x `inner` contiguous; channels-last is inner == 1.
#pragma once

#include <cstdint>

namespace dyt::cuda {

enum class DType { f32, bf16, f16 };

struct Shape {
  int64_t outer, channels, inner;
};

// Bytes of scratch the backward pass needs for `shape` and `dt` (partials of dw, db, dalpha; the
// split depends on the occupancy each kernel instance reaches on the current device).
int64_t backward_workspace_bytes(const Shape& shape, DType dt);

// alpha is a device pointer to one fp32 value (the parameter itself, no host sync).
void forward(const void* x, void* y, DType dt, const Shape& shape, const float* alpha, const float* w,
             const float* b, void* stream);

// dx may be null. dw, db: C fp32 values; dalpha: one fp32 value (all device pointers, overwritten).
void backward(const void* x, const void* dy, void* dx, DType dt, const Shape& shape, const float* alpha,
              const float* w, float* dw, float* db, float* dalpha, void* workspace, void* stream);

// fp32 x with y (forward) or dy (backward) stored as `io_dt` (bf16 or fp16): a norm whose output
// feeds a Linear under autocast writes, and its backward reads, autocast's dtype directly, which
// saves the cast kernels on either side (the values are those of the fp32 kernels, rounded once).
// Channels-last and vectorised only: call mixed_supported() first (C % 4 == 0, x and dx 16-byte
// and y / dy 8-byte aligned; dx may be null).
bool mixed_supported(const Shape& shape, const void* x, const void* y_or_dy, const void* dx);
void forward_mixed(const float* x, void* y, DType io_dt, const Shape& shape, const float* alpha, const float* w,
                   const float* b, void* stream);
int64_t backward_mixed_workspace_bytes(const Shape& shape, DType io_dt);
void backward_mixed(const float* x, const void* dy, DType io_dt, float* dx, const Shape& shape, const float* alpha,
                    const float* w, float* dw, float* db, float* dalpha, void* workspace, void* stream);

}  // namespace dyt::cuda
