// The DyT operator: ATen reference and the fused op with its hand-written backward.
// The fused op splits work over threads here and calls the raw-pointer kernels of dyt_cpu*.cpp
// or dyt_cuda.cu. See dyt_op.h for the math.
#include "models/norm/dyt_op.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/norm/dyt_cpu.h"
#ifdef DYT_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "models/norm/dyt_cuda.h"
#endif

namespace dyt {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Layout {
  int64_t outer, channels, inner;
};

Layout layout_of(const Tensor& x, bool channels_first) {
  TORCH_CHECK(x.dim() >= (channels_first ? 2 : 1), "dyt: input of shape ", x.sizes(),
              channels_first ? " has no channel axis at dim 1" : " is a scalar");
  if (!channels_first) {
    int64_t C = x.size(-1);
    return {C ? x.numel() / C : 0, C, 1};
  }
  int64_t N = x.size(0), C = x.size(1);
  return {N, C, N * C ? x.numel() / (N * C) : 0};
}

Tensor param_f32(const Tensor& p, const Tensor& x) {
  return p.to(x.device(), torch::kFloat).contiguous();
}

// ---- CPU -------------------------------------------------------------------------------------------
cpu::DType cpu_dtype(const Tensor& x) { return x.scalar_type() == torch::kBFloat16 ? cpu::DType::bf16 : cpu::DType::f32; }

cpu::Segments segments_of(const Layout& l, bool cf) {
  cpu::Segments s;
  s.channels = l.channels;
  s.channels_first = cf;
  s.len = cf ? l.inner : l.channels;
  s.begin = 0;
  s.end = cf ? l.outer * l.channels : l.outer;
  return s;
}

// The last-level cache one core can fill: Linux's sysfs entry for cpu0's level-3 cache, which
// on AMD is one core complex's slice (8 MiB on Zen 1, 32 MiB on a Zen 3/4 CCD), where
// sysconf(_SC_LEVEL3_CACHE_SIZE) can report the whole package's (64 MiB on a Zen 1 VM, where
// the fp32 forward at 12608 x 384, 37 MiB of traffic, then went without streaming stores and took
// 6-9 % longer: results/reference/bench/2026-12-02-zen1b/); else sysconf; else 32 MiB.
int64_t last_level_cache_bytes() {
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream level(dir + "level"), size(dir + "size");
    int lv = 0;
    std::string sz;
    if (!(level >> lv) || lv != 3 || !(size >> sz) || sz.empty()) continue;
    char* end = nullptr;
    const long long v = std::strtoll(sz.c_str(), &end, 10);
    const int64_t unit = *end == 'K' ? 1LL << 10 : *end == 'M' ? 1LL << 20 : *end == 'G' ? 1LL << 30 : 1;
    if (v > 0) return static_cast<int64_t>(v) * unit;
  }
  const long l3 = ::sysconf(_SC_LEVEL3_CACHE_SIZE);
  return l3 > 0 ? static_cast<int64_t>(l3) : (int64_t(32) << 20);
}

// Whether the kernels should write their output with streaming stores: when the tensors the call
// reads and writes (`traffic` bytes) exceed the last-level cache, the output would be evicted
// before anyone reads it, and ordinary stores would first read every output line from memory.
// DYT_CPU_STREAM=0 or 1 forces them off or on (for benchmarks).
bool stream_outputs(int64_t traffic) {
  static const int mode = [] {
    const char* e = std::getenv("DYT_CPU_STREAM");
    return e && *e ? (std::string(e) == "0" ? 0 : 1) : -1;
  }();
  if (mode >= 0) return mode == 1;
  static const int64_t llc = last_level_cache_bytes();
  return traffic > llc;
}

// Whether the bf16 kernels take tanh from a table (cpu::Segments::bf16_table): where the ISA
// measured it faster and each thread's share reaches Kernels::bf16_table_min elements.
// DYT_CPU_BF16_TABLE=0 or 1 forces it off or on, whatever the size (for benchmarks and tests);
// dyt_cpu_bf16_table_override, before both, lets one process time the two paths side by side.
std::atomic<int> bf16_table_override{-1};

bool use_bf16_table(const cpu::Kernels& k, int64_t numel) {
  if (const int o = bf16_table_override.load(std::memory_order_relaxed); o >= 0) return o == 1;
  static const int mode = [] {
    const char* e = std::getenv("DYT_CPU_BF16_TABLE");
    return e && *e ? (std::string(e) == "0" ? 0 : 1) : -1;
  }();
  if (mode >= 0) return mode == 1;
  return k.bf16_table_min > 0 && numel / std::max(1, at::get_num_threads()) >= k.bf16_table_min;
}

Tensor forward_cpu(const Tensor& x, float alpha, const Tensor& w, const Tensor& b, bool cf) {
  Tensor y = torch::empty_like(x);
  if (x.numel() == 0) return y;
  const cpu::Kernels& k = cpu::best_kernels();
  cpu::Segments all = segments_of(layout_of(x, cf), cf);
  all.stream = stream_outputs(2 * x.nbytes());
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, all.len));
  const void* xp = x.data_ptr();
  void* yp = y.data_ptr();
  const float* wp = w.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  const cpu::DType dt = cpu_dtype(x);
  all.bf16_table = dt == cpu::DType::bf16 && use_bf16_table(k, x.numel());
  at::parallel_for(all.begin, all.end, grain, [&](int64_t begin, int64_t end) {
    cpu::Segments s = all;
    s.begin = begin, s.end = end;
    k.forward(xp, yp, dt, s, alpha, wp, bp);
  });
  return y;
}

// Returns {dx (or undefined), dalpha [1], dweight [C], dbias [C]} in fp32 for the parameters.
std::vector<Tensor> backward_cpu(const Tensor& x, const Tensor& dy, float alpha, const Tensor& w, bool cf,
                                 bool need_dx) {
  const Layout l = layout_of(x, cf);
  const int64_t C = l.channels;
  Tensor dx = need_dx ? torch::empty_like(x) : Tensor();
  cpu::Segments all = segments_of(l, cf);
  all.stream = stream_outputs(3 * x.nbytes());
  const cpu::Kernels& k = cpu::best_kernels();
  const cpu::DType dt = cpu_dtype(x);
  all.bf16_table = dt == cpu::DType::bf16 && use_bf16_table(k, x.numel());
  const int64_t units = all.end, elems = x.numel();
  // Fixed chunks (by thread count and size) so the reduction order, hence the result, is
  // reproducible run to run.
  const int64_t nchunks =
      units == 0 ? 0 : std::max<int64_t>(1, std::min<int64_t>({at::get_num_threads(), units, elems / 16384 + 1}));
  std::vector<double> dw(nchunks * C, 0.0), db(nchunks * C, 0.0), da(nchunks, 0.0);
  const void* xp = x.data_ptr();
  const void* gp = dy.data_ptr();
  void* dxp = need_dx ? dx.data_ptr() : nullptr;
  const float* wp = w.data_ptr<float>();
  at::parallel_for(0, nchunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t ch = cb; ch < ce; ++ch) {
      cpu::Segments s = all;
      s.begin = units * ch / nchunks;
      s.end = units * (ch + 1) / nchunks;
      cpu::Partials p{dw.data() + ch * C, db.data() + ch * C, 0.0};
      k.backward(xp, gp, dxp, dt, s, alpha, wp, p);
      da[ch] = p.dalpha;
    }
  });
  Tensor dweight = torch::zeros({C}, torch::kDouble), dbias = torch::zeros({C}, torch::kDouble);
  double* dwp = dweight.data_ptr<double>();
  double* dbp = dbias.data_ptr<double>();
  double dalpha = 0.0;
  for (int64_t ch = 0; ch < nchunks; ++ch) {
    for (int64_t c = 0; c < C; ++c) dwp[c] += dw[ch * C + c], dbp[c] += db[ch * C + c];
    dalpha += da[ch];
  }
  return {dx, torch::full({1}, dalpha, torch::kFloat), dweight.to(torch::kFloat), dbias.to(torch::kFloat)};
}

// ---- CUDA ------------------------------------------------------------------------------------------
#ifdef DYT_WITH_CUDA
cuda::DType cuda_dtype(const Tensor& x) {
  switch (x.scalar_type()) {
    case torch::kBFloat16: return cuda::DType::bf16;
    case torch::kHalf: return cuda::DType::f16;
    default: return cuda::DType::f32;
  }
}
cuda::Shape cuda_shape(const Layout& l) { return {l.outer, l.channels, l.inner}; }
void* current_stream(const Tensor& x) { return c10::cuda::getCurrentCUDAStream(x.device().index()).stream(); }

Tensor forward_cuda(const Tensor& x, const Tensor& alpha, const Tensor& w, const Tensor& b, bool cf) {
  c10::cuda::CUDAGuard guard(x.device());  // launch on the tensor's device, whatever is current
  Tensor y = torch::empty_like(x);
  if (x.numel() == 0) return y;
  cuda::forward(x.data_ptr(), y.data_ptr(), cuda_dtype(x), cuda_shape(layout_of(x, cf)), alpha.data_ptr<float>(),
                w.data_ptr<float>(), b.data_ptr<float>(), current_stream(x));
  return y;
}

std::vector<Tensor> backward_cuda(const Tensor& x, const Tensor& dy, const Tensor& alpha, const Tensor& w, bool cf,
                                  bool need_dx) {
  c10::cuda::CUDAGuard guard(x.device());
  const Layout l = layout_of(x, cf);
  auto fopts = x.options().dtype(torch::kFloat);
  Tensor dx = need_dx ? torch::empty_like(x) : Tensor();
  if (x.numel() == 0)
    return {dx, torch::zeros({1}, fopts), torch::zeros({l.channels}, fopts), torch::zeros({l.channels}, fopts)};
  // The kernels overwrite every entry of dw, db and dalpha: no zero-filling launches.
  Tensor dw = torch::empty({l.channels}, fopts), db = torch::empty({l.channels}, fopts), da = torch::empty({1}, fopts);
  const cuda::Shape s = cuda_shape(l);
  Tensor ws = torch::empty({cuda::backward_workspace_bytes(s, cuda_dtype(x))}, x.options().dtype(torch::kByte));
  cuda::backward(x.data_ptr(), dy.data_ptr(), need_dx ? dx.data_ptr() : nullptr, cuda_dtype(x), s,
                 alpha.data_ptr<float>(), w.data_ptr<float>(), dw.data_ptr<float>(), db.data_ptr<float>(),
                 da.data_ptr<float>(), ws.data_ptr(), current_stream(x));
  return {dx, da, dw, db};
}

// fp32 x, y in a 16-bit type (see cuda::forward_mixed); undefined where the layout does not allow it.
Tensor forward_cuda_mixed(const Tensor& x, const Tensor& alpha, const Tensor& w, const Tensor& b,
                          torch::ScalarType out) {
  if (x.scalar_type() != torch::kFloat || (out != torch::kBFloat16 && out != torch::kHalf)) return {};
  c10::cuda::CUDAGuard guard(x.device());
  Tensor y = torch::empty(x.sizes(), x.options().dtype(out));
  const cuda::Shape s = cuda_shape(layout_of(x, false));
  if (x.numel() == 0) return y;
  if (!cuda::mixed_supported(s, x.data_ptr(), y.data_ptr(), nullptr)) return {};
  cuda::forward_mixed(x.data_ptr<float>(), y.data_ptr(), cuda_dtype(y), s, alpha.data_ptr<float>(), w.data_ptr<float>(),
                      b.data_ptr<float>(), current_stream(x));
  return y;
}

// fp32 x, dy in a 16-bit type, fp32 dx; empty where the layout does not allow it.
std::vector<Tensor> backward_cuda_mixed(const Tensor& x, const Tensor& dy, const Tensor& alpha, const Tensor& w,
                                        bool need_dx) {
  if (x.scalar_type() != torch::kFloat || (dy.scalar_type() != torch::kBFloat16 && dy.scalar_type() != torch::kHalf) ||
      x.numel() == 0)
    return {};
  c10::cuda::CUDAGuard guard(x.device());
  const Layout l = layout_of(x, false);
  const cuda::Shape s = cuda_shape(l);
  Tensor dx = need_dx ? torch::empty_like(x) : Tensor();
  if (!cuda::mixed_supported(s, x.data_ptr(), dy.data_ptr(), need_dx ? dx.data_ptr() : nullptr)) return {};
  auto fopts = x.options().dtype(torch::kFloat);
  Tensor dw = torch::empty({l.channels}, fopts), db = torch::empty({l.channels}, fopts), da = torch::empty({1}, fopts);
  Tensor ws = torch::empty({cuda::backward_mixed_workspace_bytes(s, cuda_dtype(dy))}, x.options().dtype(torch::kByte));
  cuda::backward_mixed(x.data_ptr<float>(), dy.data_ptr(), cuda_dtype(dy), need_dx ? dx.data_ptr<float>() : nullptr, s,
                       alpha.data_ptr<float>(), w.data_ptr<float>(), dw.data_ptr<float>(), db.data_ptr<float>(),
                       da.data_ptr<float>(), ws.data_ptr(), current_stream(x));
  return {dx, da, dw, db};
}
#endif

// ---- autograd -----------------------------------------------------------------------------------------
class DyTFunction : public torch::autograd::Function<DyTFunction> {
 public:
  // out_dtype: the output's dtype (a torch::ScalarType): x's own, or for an fp32 x a 16-bit one,
  // written directly by the CUDA kernels where the layout allows it (see cuda::forward_mixed) and
  // otherwise rounded from the fp32 result, which gives the same bits.
  static Tensor forward(AutogradContext* ctx, const Tensor& x_in, const Tensor& alpha, const Tensor& weight,
                        const Tensor& bias, bool channels_first, int64_t out_dtype) {
    Tensor x = x_in.contiguous();
    ctx->save_for_backward({x, alpha, weight});
    ctx->saved_data["cf"] = channels_first;
    ctx->saved_data["bias_dtype"] = static_cast<int64_t>(bias.scalar_type());
    Tensor w = param_f32(weight, x), b = param_f32(bias, x);
    const auto out = static_cast<torch::ScalarType>(out_dtype);
    if (x.is_cpu()) {
      Tensor y = forward_cpu(x, alpha.item<float>(), w, b, channels_first);
      return out == y.scalar_type() ? y : y.to(out);
    }
#ifdef DYT_WITH_CUDA
    if (out != x.scalar_type() && !channels_first) {
      Tensor y = forward_cuda_mixed(x, param_f32(alpha, x), w, b, out);
      if (y.defined()) return y;
    }
    Tensor y = forward_cuda(x, param_f32(alpha, x), w, b, channels_first);
    return out == y.scalar_type() ? y : y.to(out);
#else
    TORCH_CHECK(false, "dyt fused: this build has no CUDA kernels");
#endif
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    // The engine runs a backward with grad mode on only under create_graph=True. The kernels'
    // gradients are not themselves differentiable, so a second derivative would silently be zero.
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "dyt fused: no second derivative (backward with create_graph=True, e.g. a gradient penalty); "
                "set model.norm.impl: aten for such runs");
    auto saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const Tensor& alpha = saved[1];
    const Tensor& weight = saved[2];
    const bool cf = ctx->saved_data["cf"].toBool();
    const auto bias_dtype = static_cast<torch::ScalarType>(ctx->saved_data["bias_dtype"].toInt());
    Tensor w = param_f32(weight, x);
    const bool need_dx = ctx->needs_input_grad(0);
    std::vector<Tensor> g;
#ifdef DYT_WITH_CUDA
    if (!x.is_cpu() && !cf && grads[0].scalar_type() != x.scalar_type())  // dy in the 16-bit output dtype
      g = backward_cuda_mixed(x, grads[0].contiguous(), param_f32(alpha, x), w, need_dx);
#endif
    if (g.empty()) {  // dy widened to x's dtype: exact, so the same values as the mixed kernels'
      Tensor dy = grads[0].to(x.scalar_type()).contiguous();
      if (x.is_cpu()) {
        g = backward_cpu(x, dy, alpha.item<float>(), w, cf, need_dx);
      } else {
#ifdef DYT_WITH_CUDA
        g = backward_cuda(x, dy, param_f32(alpha, x), w, cf, need_dx);
#else
        TORCH_CHECK(false, "dyt fused: this build has no CUDA kernels");
#endif
      }
    }
    return {g[0], g[1].to(alpha.scalar_type()), g[2].to(weight.scalar_type()), g[3].to(bias_dtype), Tensor(),
            Tensor()};
  }
};

}  // namespace

namespace {
torch::ScalarType output_dtype(const Tensor& x, std::optional<torch::ScalarType> out_dtype) {
  if (!out_dtype || *out_dtype == x.scalar_type()) return x.scalar_type();
  TORCH_CHECK(x.scalar_type() == torch::kFloat && (*out_dtype == torch::kBFloat16 || *out_dtype == torch::kHalf),
              "dyt: an output dtype other than the input's is for an fp32 input and a bf16 or fp16 output "
              "(a norm feeding a Linear under autocast); got input ",
              x.scalar_type(), ", output ", *out_dtype);
  return *out_dtype;
}
}  // namespace

Tensor dyt_aten(const Tensor& x, const Tensor& alpha, const Tensor& weight, const Tensor& bias, bool channels_first,
                std::optional<torch::ScalarType> out_dtype) {
  // fp32 parameters promote a bf16/fp16 x to fp32 (as the paper's module returns); the result is
  // rounded back to x's dtype (or out_dtype) once, as the fused kernels do, so both paths return
  // the same dtype.
  const torch::ScalarType out = output_dtype(x, out_dtype);
  Tensor t = torch::tanh(alpha * x);
  Tensor y;
  if (!channels_first) {
    y = t * weight + bias;
  } else {
    std::vector<int64_t> shape(x.dim() - 1, 1);
    shape[0] = weight.size(0);
    y = t * weight.view(shape) + bias.view(shape);
  }
  return y.scalar_type() == out ? y : y.to(out);
}

Tensor dyt_fused(const Tensor& x, const Tensor& alpha, const Tensor& weight, const Tensor& bias, bool channels_first,
                 std::optional<torch::ScalarType> out_dtype) {
  std::string why;
  TORCH_CHECK(dyt_fused_available(x.device(), x.scalar_type(), &why), "dyt fused: ", why);
  TORCH_CHECK(alpha.numel() == 1, "dyt fused: alpha must be one scalar per layer (the paper's DyT), got ",
              alpha.numel(), " elements of shape ", alpha.sizes(), "; use model.norm.impl: aten for other shapes");
  const Layout l = layout_of(x, channels_first);
  TORCH_CHECK(weight.numel() == l.channels && bias.numel() == l.channels, "dyt fused: weight/bias have ",
              weight.numel(), "/", bias.numel(), " entries for ", l.channels, " channels");
  const torch::ScalarType out = output_dtype(x, out_dtype);
  return DyTFunction::apply(x, alpha, weight, bias, channels_first, static_cast<int64_t>(out));
}

bool dyt_fused_available(const torch::Device& device, torch::ScalarType dtype, std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  if (device.is_cpu()) {
    if (dtype != torch::kFloat && dtype != torch::kBFloat16)
      return fail(std::string("CPU kernels take float32 and bfloat16, not ") + c10::toString(dtype));
    return true;
  }
  if (device.is_cuda()) {
    if (!dyt_cuda_compiled())
      return fail("this build has no CUDA kernels (LibTorch without CUDA, or nvcc not found, or DYT_WITH_CUDA=OFF)");
    if (dtype != torch::kFloat && dtype != torch::kBFloat16 && dtype != torch::kHalf)
      return fail(std::string("CUDA kernels take float32, bfloat16 and float16, not ") + c10::toString(dtype));
    return true;
  }
  return fail("no fused DyT kernel for device " + device.str());
}

bool dyt_cuda_compiled() {
#ifdef DYT_WITH_CUDA
  return true;
#else
  return false;
#endif
}

std::string dyt_cpu_isa() { return cpu::best_kernels().isa; }

bool dyt_cpu_bf16_table_used(int64_t numel) { return use_bf16_table(cpu::best_kernels(), numel); }

void dyt_cpu_bf16_table_override(int mode) {
  if (mode < -1 || mode > 1) throw std::invalid_argument("dyt_cpu_bf16_table_override: -1 (automatic), 0 or 1");
  bf16_table_override.store(mode, std::memory_order_relaxed);
}

}  // namespace dyt
