// Reflection pad 2d on CUDA, forward and backward, NCHW and channels-last.
// The kernels are in reflection_pad_kernels.cuh, their launch shapes in launch_config.h.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common.h"
#include "launch_config.h"
#include "reflection_pad_kernels.cuh"

namespace cyclegan_tool {
namespace {

at::Tensor reflection_pad2d_cuda(const at::Tensor& input, at::IntArrayRef pad) {
  const c10::cuda::CUDAGuard guard(input.device());
  const auto a = pad_forward_args(input, pad);
  const auto &x = a.src, &out = a.dst;
  const auto fmt = a.fmt;
  const int64_t c = a.c, h = a.h, w = a.w, ho = a.ho, wo = a.wo;
  if (out.numel() == 0) return out;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "reflection_pad2d_cuda", [&] {
    const auto total = out.numel();
    if (fmt == at::MemoryFormat::ChannelsLast) {
      pad_forward_kernel<scalar_t, true><<<pad_blocks(total), kPadThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), total, c, h, w, ho, wo, pad[0], pad[2]);
    } else {
      pad_forward_kernel<scalar_t, false><<<pad_blocks(total), kPadThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), total, c, h, w, ho, wo, pad[0], pad[2]);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor reflection_pad2d_backward_cuda(const at::Tensor& grad_output, at::IntArrayRef pad, int64_t h, int64_t w) {
  const c10::cuda::CUDAGuard guard(grad_output.device());
  const auto a = pad_backward_args(grad_output, pad, h, w);
  const auto &g = a.src, &grad_input = a.dst;
  const auto fmt = a.fmt;
  const int64_t c = a.c, ho = a.ho, wo = a.wo;
  if (grad_input.numel() == 0) return grad_input;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "reflection_pad2d_backward_cuda", [&] {
    const auto total = grad_input.numel();
    if (fmt == at::MemoryFormat::ChannelsLast) {
      pad_backward_kernel<scalar_t, true><<<pad_blocks(total), kPadThreads, 0, stream>>>(
          g.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(), total, c, h, w, ho, wo,
          pad[0], pad[1], pad[2], pad[3]);
    } else {
      pad_backward_kernel<scalar_t, false><<<pad_blocks(total), kPadThreads, 0, stream>>>(
          g.const_data_ptr<scalar_t>(), grad_input.mutable_data_ptr<scalar_t>(), total, c, h, w, ho, wo,
          pad[0], pad[1], pad[2], pad[3]);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(cyclegan_tool, CUDA, m) {
  m.impl("reflection_pad2d", &reflection_pad2d_cuda);
  m.impl("reflection_pad2d_backward", &reflection_pad2d_backward_cuda);
}

}  // namespace cyclegan_tool
