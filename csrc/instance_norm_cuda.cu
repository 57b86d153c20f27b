// Instance norm on CUDA with optional fused ReLU and residual add: the host side (checks,
// dispatch, launches). The kernels are in instance_norm_kernels.cuh, their launch shapes in
// launch_config.h.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common.h"
#include "instance_norm_kernels.cuh"
#include "launch_config.h"

namespace cyclegan_tool {
namespace {

// ---- host ----------------------------------------------------------------------------------

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_cuda(
    const at::Tensor& input, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& residual, double eps, bool relu) {
  const c10::cuda::CUDAGuard guard(input.device());
  const auto a = norm_forward_args(input, weight, bias, residual);
  const auto &x = a.x, &res = a.residual, &out = a.out, &mean = a.mean, &rstd = a.rstd, &w = a.weight, &bb = a.bias;
  const bool has_res = res.defined();
  const auto fmt = a.fmt;
  const int64_t n = a.n, c = a.c, hw = a.hw;
  if (x.numel() == 0) return {out, mean, rstd};
  TORCH_CHECK(n <= 65535, "instance_norm: batch ", n, " is over the CUDA grid limit 65535");
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "instance_norm_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* rp = has_res ? res.const_data_ptr<scalar_t>() : nullptr;
    if (fmt == at::MemoryFormat::ChannelsLast) {
      norm_forward_nhwc<scalar_t><<<norm_nhwc_grid(n, c), norm_nhwc_block(), 0, stream>>>(
          x.const_data_ptr<scalar_t>(), rp, out.mutable_data_ptr<scalar_t>(), mean.mutable_data_ptr<acc_t>(),
          rstd.mutable_data_ptr<acc_t>(), w.const_data_ptr<acc_t>(), bb.const_data_ptr<acc_t>(), c, hw, eps, relu);
    } else {
      norm_forward_nchw<scalar_t><<<norm_nchw_grid(n, c), kPlaneThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), rp, out.mutable_data_ptr<scalar_t>(), mean.mutable_data_ptr<acc_t>(),
          rstd.mutable_data_ptr<acc_t>(), w.const_data_ptr<acc_t>(), bb.const_data_ptr<acc_t>(), c, hw, eps, relu);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {out, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> instance_norm_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& mean, const at::Tensor& rstd,
    const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias, bool relu) {
  const c10::cuda::CUDAGuard guard(input.device());
  const auto a = norm_backward_args(grad_output, input, mean, rstd, weight, bias);
  const auto &x = a.x, &g = a.grad, &grad_input = a.out, &mean_c = a.mean, &rstd_c = a.rstd, &w = a.weight,
             &bb = a.bias, &gw_part = a.gw_part, &gb_part = a.gb_part;
  const auto fmt = a.fmt;
  const int64_t n = a.n, c = a.c, hw = a.hw;
  if (x.numel() == 0) return {grad_input, gw_part.sum(0), gb_part.sum(0)};
  TORCH_CHECK(n <= 65535, "instance_norm_backward: batch ", n, " is over the CUDA grid limit 65535");
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "instance_norm_backward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    if (fmt == at::MemoryFormat::ChannelsLast) {
      norm_backward_nhwc<scalar_t><<<norm_nhwc_grid(n, c), norm_nhwc_block(), 0, stream>>>(
          g.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(),
          mean_c.const_data_ptr<acc_t>(), rstd_c.const_data_ptr<acc_t>(), w.const_data_ptr<acc_t>(),
          bb.const_data_ptr<acc_t>(), gw_part.mutable_data_ptr<acc_t>(), gb_part.mutable_data_ptr<acc_t>(), c, hw, relu);
    } else {
      norm_backward_nchw<scalar_t><<<norm_nchw_grid(n, c), kPlaneThreads, 0, stream>>>(
          g.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(),
          mean_c.const_data_ptr<acc_t>(), rstd_c.const_data_ptr<acc_t>(), w.const_data_ptr<acc_t>(),
          bb.const_data_ptr<acc_t>(), gw_part.mutable_data_ptr<acc_t>(), gb_part.mutable_data_ptr<acc_t>(), c, hw, relu);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_input, gw_part.sum(0), gb_part.sum(0)};
}

}  // namespace

TORCH_LIBRARY_IMPL(cyclegan_tool, CUDA, m) {
  m.impl("instance_norm", &instance_norm_cuda);
  m.impl("instance_norm_backward", &instance_norm_backward_cuda);
}

}  // namespace cyclegan_tool
