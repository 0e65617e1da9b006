// The DyT operator, y = weight * tanh(alpha * x) + bias, in two implementations:
//   aten   plain tensor ops (what a PyTorch user writes); autograd derives the backward.
//   fused  one pass over memory forward, one pass plus reductions backward, with a hand-written
//          autograd backward that saves only x (and the parameters):
//            t      = tanh(alpha * x)
//            dx     = dy * weight * alpha * (1 - t^2)
//            dalpha = sum(dy * weight * x * (1 - t^2))
//            dweight[c] = sum over rows of dy * t,   dbias[c] = sum over rows of dy
// The channel axis is the last one, or dim 1 when channels_first (NCHW, ConvNeXt's LayerNorm2d).
// CPU kernels live in dyt_cpu*.cpp, CUDA kernels in dyt_cuda.cu; both take raw pointers.
#pragma once

#include <torch/torch.h>

#include <string>

namespace dyt {

// out_dtype: the output's dtype; by default x's. An fp32 x may ask for bf16 or fp16 (a norm whose
// output feeds a Linear under autocast): the result is the fp32 one rounded once, bit for bit,
// which the fused CUDA kernels write directly (and whose gradient they read directly) for
// channels-last inputs with C % 4 == 0, saving a cast kernel each way. Other combinations throw.
torch::Tensor dyt_aten(const torch::Tensor& x, const torch::Tensor& alpha, const torch::Tensor& weight,
                       const torch::Tensor& bias, bool channels_first,
                       std::optional<torch::ScalarType> out_dtype = std::nullopt);

// Differentiable in x, alpha, weight, bias. alpha has one element; weight and bias one per channel.
torch::Tensor dyt_fused(const torch::Tensor& x, const torch::Tensor& alpha, const torch::Tensor& weight,
                        const torch::Tensor& bias, bool channels_first,
                        std::optional<torch::ScalarType> out_dtype = std::nullopt);

// Whether the fused op runs for tensors on `device` with `dtype`; if not, *why says why.
bool dyt_fused_available(const torch::Device& device, torch::ScalarType dtype, std::string* why);

// Whether the CUDA kernels were compiled into this build.
bool dyt_cuda_compiled();

// The CPU instruction set the fused kernels dispatch to ("avx512", "avx2" or "scalar").
std::string dyt_cpu_isa();

// Whether the fused CPU op takes tanh from its table of all 2^16 bf16 inputs (models/norm/
// dyt_cpu_impl.h; the function's own bits, faster for long tensors) for a bf16 tensor of `numel`
// elements. Decided, first to last: the override below; DYT_CPU_BF16_TABLE=0|1; automatically,
// where this instruction set measured it faster and each thread's share reaches its minimum.
bool dyt_cpu_bf16_table_used(int64_t numel);

// -1 automatic (the default), 0 off, 1 on; process-wide. For benchmarks that time both paths in
// one run (`dyt bench norm --dtype bf16 --only dyt/fused:table,dyt/fused:function`).
void dyt_cpu_bf16_table_override(int mode);

}  // namespace dyt
