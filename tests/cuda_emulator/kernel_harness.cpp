// Runs every CUDA kernel of csrc/ on the CPU through the cuda-on-cpu emulator (HIP-CPU plus a
// CUDA shim), launched exactly as the .cu host files launch them (launch_config.h), and
// compares each result with a double-precision loop written independently here.
//
// Built and run by tests/test_cuda_kernels_emulated.py. Prints one line per failed check and
// a closing line "kernels N, cases M, checks K, failed F"; exit status 1 if any check failed.
#include <ATen/OpMathType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "cuda_hipcpu_shim.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "instance_norm_kernels.cuh"
#include "launch_config.h"
#include "reflection_pad_kernels.cuh"

using namespace cyclegan_tool;

namespace {

struct Shape {
  int64_t n, c, h, w;
};

// Odd sizes, 1x1 planes, planes larger than a block (512), channel counts that are not a
// multiple of 32 (and more than one 32-channel tile), batch > 1.
const std::vector<Shape> kShapes = {
    {1, 1, 1, 1}, {2, 3, 5, 7}, {1, 33, 4, 3}, {2, 5, 37, 41}, {3, 40, 2, 9}, {1, 64, 16, 16}, {2, 2, 1, 13},
};

int g_checks = 0, g_failed = 0, g_cases = 0;
std::set<std::string> g_kernels;

template <typename T> const char* type_name();
template <> const char* type_name<float>() { return "float32"; }
template <> const char* type_name<double>() { return "float64"; }
template <> const char* type_name<c10::Half>() { return "float16"; }
template <> const char* type_name<c10::BFloat16>() { return "bfloat16"; }

// Relative tolerance of one rounding to T (and of float32 accumulation for the half types).
template <typename T> double tol();
template <> double tol<float>() { return 2e-5; }
template <> double tol<double>() { return 1e-11; }
template <> double tol<c10::Half>() { return 2e-3; }
template <> double tol<c10::BFloat16>() { return 1.6e-2; }

int64_t index_of(const Shape& s, bool nhwc, int64_t n, int64_t c, int64_t y, int64_t x) {
  return nhwc ? ((n * s.h + y) * s.w + x) * s.c + c : ((n * s.c + c) * s.h + y) * s.w + x;
}

template <typename T>
std::vector<T> random_values(size_t count, std::mt19937& rng, double scale, double offset) {
  std::normal_distribution<double> dist(offset, scale);
  std::vector<T> v(count);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

// Compare `got` with `want` within tol * (1 + |want|); report the first few mismatches.
template <typename G>
void expect_close(const std::string& what, const std::vector<G>& got, const std::vector<double>& want, double tolerance) {
  ++g_checks;
  int bad = 0;
  double worst = 0;
  size_t where = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    const double err = std::fabs(g - want[i]) / (1.0 + std::fabs(want[i]));
    if (!(err <= tolerance)) {  // NaN fails too
      if (bad == 0 || err > worst) { worst = err; where = i; }
      ++bad;
    }
  }
  if (bad) {
    ++g_failed;
    std::printf("FAIL %s: %d of %zu values off (worst at %zu: got %.8g want %.8g, tolerance %.1e)\n", what.c_str(), bad,
                want.size(), where, static_cast<double>(got[where]), want[where], tolerance);
  }
}

std::string label(const char* kernel, const char* type, const Shape& s, bool nhwc, const std::string& extra = "") {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s %s [%lld,%lld,%lld,%lld] %s%s", kernel, type, (long long)s.n, (long long)s.c,
                (long long)s.h, (long long)s.w, nhwc ? "channels-last" : "NCHW", extra.c_str());
  return buf;
}

// ---- reflection pad ----------------------------------------------------------------------------

int64_t mirror(int64_t i, int64_t size) {  // reflect without repeating the edge, by the period
  if (size == 1) return 0;
  const int64_t period = 2 * (size - 1);
  i = ((i % period) + period) % period;
  return i < size ? i : period - i;
}

template <typename T>
void check_pad(const Shape& s, bool nhwc, int64_t left, int64_t right, int64_t top, int64_t bottom, std::mt19937& rng) {
  ++g_cases;
  const int64_t ho = s.h + top + bottom, wo = s.w + left + right;
  const Shape so{s.n, s.c, ho, wo};
  const auto x = random_values<T>(s.n * s.c * s.h * s.w, rng, 1.0, 0.0);
  std::vector<T> y(s.n * s.c * ho * wo, T(-777));
  const int64_t total = static_cast<int64_t>(y.size());
  char pads[64];
  std::snprintf(pads, sizeof pads, " pad %lld,%lld,%lld,%lld", (long long)left, (long long)right, (long long)top,
                (long long)bottom);
  // forward, launched as reflection_pad2d_cuda does
  if (nhwc) {
    CUDA_LAUNCH((pad_forward_kernel<T, true>), pad_blocks(total), kPadThreads, 0, nullptr, x.data(), y.data(), total,
                s.c, s.h, s.w, ho, wo, left, top);
  } else {
    CUDA_LAUNCH((pad_forward_kernel<T, false>), pad_blocks(total), kPadThreads, 0, nullptr, x.data(), y.data(), total,
                s.c, s.h, s.w, ho, wo, left, top);
  }
  hipDeviceSynchronize();
  g_kernels.insert(nhwc ? "pad_forward_kernel<channels-last>" : "pad_forward_kernel<NCHW>");
  std::vector<double> want(y.size());
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t c = 0; c < s.c; ++c)
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox)
          want[index_of(so, nhwc, n, c, oy, ox)] =
              static_cast<double>(x[index_of(s, nhwc, n, c, mirror(oy - top, s.h), mirror(ox - left, s.w))]);
  expect_close(label("pad_forward", type_name<T>(), s, nhwc, pads), y, want, 0.0);

  // backward (a gather in the kernel; a scatter-add here), launched as reflection_pad2d_backward_cuda does
  const auto g = random_values<T>(y.size(), rng, 1.0, 0.0);
  std::vector<T> dx(x.size(), T(-777));
  const int64_t in_total = static_cast<int64_t>(dx.size());
  if (nhwc) {
    CUDA_LAUNCH((pad_backward_kernel<T, true>), pad_blocks(in_total), kPadThreads, 0, nullptr, g.data(), dx.data(),
                in_total, s.c, s.h, s.w, ho, wo, left, right, top, bottom);
  } else {
    CUDA_LAUNCH((pad_backward_kernel<T, false>), pad_blocks(in_total), kPadThreads, 0, nullptr, g.data(), dx.data(),
                in_total, s.c, s.h, s.w, ho, wo, left, right, top, bottom);
  }
  hipDeviceSynchronize();
  g_kernels.insert(nhwc ? "pad_backward_kernel<channels-last>" : "pad_backward_kernel<NCHW>");
  std::vector<double> dwant(x.size(), 0.0);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t c = 0; c < s.c; ++c)
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox)
          dwant[index_of(s, nhwc, n, c, mirror(oy - top, s.h), mirror(ox - left, s.w))] +=
              static_cast<double>(g[index_of(so, nhwc, n, c, oy, ox)]);
  expect_close(label("pad_backward", type_name<T>(), s, nhwc, pads), dx, dwant, 2 * tol<T>());
}

// ---- instance norm -----------------------------------------------------------------------------

template <typename T>
void check_norm(const Shape& s, bool nhwc, bool relu, bool residual, std::mt19937& rng) {
  using acc_t = at::opmath_type<T>;
  ++g_cases;
  const double eps = 1e-5;
  const size_t count = s.n * s.c * s.h * s.w;
  const auto x = random_values<T>(count, rng, 1.5, 0.7);
  const auto res = residual ? random_values<T>(count, rng, 1.0, 0.0) : std::vector<T>();
  const auto w = random_values<acc_t>(s.c, rng, 0.5, 1.0);
  const auto b = random_values<acc_t>(s.c, rng, 0.5, 0.1);
  std::vector<T> y(count, T(-777));
  std::vector<acc_t> mean(s.n * s.c, acc_t(-777)), rstd(s.n * s.c, acc_t(-777));
  const T* rp = residual ? res.data() : nullptr;
  const std::string extra = std::string(relu ? " +relu" : "") + (residual ? " +residual" : "");
  // forward, launched as instance_norm_cuda does
  if (nhwc) {
    CUDA_LAUNCH((norm_forward_nhwc<T>), norm_nhwc_grid(s.n, s.c), norm_nhwc_block(), 0, nullptr, x.data(), rp, y.data(),
                mean.data(), rstd.data(), w.data(), b.data(), s.c, s.h * s.w, eps, relu);
  } else {
    CUDA_LAUNCH((norm_forward_nchw<T>), norm_nchw_grid(s.n, s.c), kPlaneThreads, 0, nullptr, x.data(), rp, y.data(),
                mean.data(), rstd.data(), w.data(), b.data(), s.c, s.h * s.w, eps, relu);
  }
  hipDeviceSynchronize();
  g_kernels.insert(nhwc ? "norm_forward_nhwc" : "norm_forward_nchw");

  const int64_t hw = s.h * s.w;
  std::vector<double> want(count), want_mean(s.n * s.c), want_rstd(s.n * s.c), xhat(count);
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t c = 0; c < s.c; ++c) {
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < hw; ++i) sum += static_cast<double>(x[index_of(s, nhwc, n, c, i / s.w, i % s.w)]);
      const double mu = sum / hw;
      for (int64_t i = 0; i < hw; ++i) {
        const double d = static_cast<double>(x[index_of(s, nhwc, n, c, i / s.w, i % s.w)]) - mu;
        sq += d * d;
      }
      const double rs = 1.0 / std::sqrt(sq / hw + eps);
      want_mean[n * s.c + c] = mu;
      want_rstd[n * s.c + c] = rs;
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t k = index_of(s, nhwc, n, c, i / s.w, i % s.w);
        xhat[k] = (static_cast<double>(x[k]) - mu) * rs;
        double v = xhat[k] * static_cast<double>(w[c]) + static_cast<double>(b[c]);
        if (relu && v < 0) v = 0;
        if (residual) v += static_cast<double>(res[k]);
        want[k] = v;
      }
    }
  }
  // Outputs scale with rstd (up to 1/sqrt(eps) on a constant plane): compare relative to it.
  expect_close(label("norm_forward", type_name<T>(), s, nhwc, extra), y, want, 4 * tol<T>());
  expect_close(label("norm_forward mean", type_name<T>(), s, nhwc, extra), mean, want_mean, tol<acc_t>() * 10);
  std::vector<double> rel_rstd(rstd.size()), ones(rstd.size(), 1.0);
  for (size_t i = 0; i < rstd.size(); ++i) rel_rstd[i] = static_cast<double>(rstd[i]) / want_rstd[i];
  expect_close(label("norm_forward rstd", type_name<T>(), s, nhwc, extra), rel_rstd, ones, tol<acc_t>() * 10);

  // backward, launched as instance_norm_backward_cuda does (with the kernel's own statistics)
  const auto g = random_values<T>(count, rng, 1.0, 0.0);
  std::vector<T> dx(count, T(-777));
  std::vector<acc_t> gw(s.n * s.c, acc_t(-777)), gb(s.n * s.c, acc_t(-777));
  if (nhwc) {
    CUDA_LAUNCH((norm_backward_nhwc<T>), norm_nhwc_grid(s.n, s.c), norm_nhwc_block(), 0, nullptr, g.data(), x.data(),
                dx.data(), mean.data(), rstd.data(), w.data(), b.data(), gw.data(), gb.data(), s.c, hw, relu);
  } else {
    CUDA_LAUNCH((norm_backward_nchw<T>), norm_nchw_grid(s.n, s.c), kPlaneThreads, 0, nullptr, g.data(), x.data(),
                dx.data(), mean.data(), rstd.data(), w.data(), b.data(), gw.data(), gb.data(), s.c, hw, relu);
  }
  hipDeviceSynchronize();
  g_kernels.insert(nhwc ? "norm_backward_nhwc" : "norm_backward_nchw");
  std::vector<double> want_dx(count), want_gw(s.n * s.c), want_gb(s.n * s.c);
  double scale = 1.0;  // gradients are bounded by |g| * rstd * |w| * (a few): compare relative to that
  for (int64_t n = 0; n < s.n; ++n) {
    for (int64_t c = 0; c < s.c; ++c) {
      const double rs = want_rstd[n * s.c + c], wc = static_cast<double>(w[c]), bc = static_cast<double>(b[c]);
      std::vector<double> gv(hw);
      double sg = 0, sgx = 0;
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t k = index_of(s, nhwc, n, c, i / s.w, i % s.w);
        // d/dx of relu(xhat * w + b): zero where the pre-activation is not positive
        gv[i] = (relu && xhat[k] * wc + bc <= 0) ? 0.0 : static_cast<double>(g[k]);
        sg += gv[i];
        sgx += gv[i] * xhat[k];
      }
      want_gw[n * s.c + c] = sgx;
      want_gb[n * s.c + c] = sg;
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t k = index_of(s, nhwc, n, c, i / s.w, i % s.w);
        want_dx[k] = rs * wc * (gv[i] - sg / hw - xhat[k] * sgx / hw);
      }
      scale = std::max(scale, rs * std::fabs(wc));
    }
  }
  std::vector<double> dx_scaled(count), want_scaled(count);
  for (size_t i = 0; i < count; ++i) {
    dx_scaled[i] = static_cast<double>(dx[i]) / scale;
    want_scaled[i] = want_dx[i] / scale;
  }
  const double grad_tol = (hw == 1 ? 4 : 8) * tol<T>();
  expect_close(label("norm_backward dx", type_name<T>(), s, nhwc, extra), dx_scaled, want_scaled, grad_tol);
  const double sum_tol = tol<T>() * 4 * std::sqrt(static_cast<double>(hw));
  expect_close(label("norm_backward grad_weight", type_name<T>(), s, nhwc, extra), gw, want_gw, sum_tol);
  expect_close(label("norm_backward grad_bias", type_name<T>(), s, nhwc, extra), gb, want_gb, sum_tol);
}

template <typename T>
void run_type(std::mt19937& rng) {
  for (const auto& s : kShapes) {
    for (bool nhwc : {false, true}) {
      const int64_t pw = std::min<int64_t>(3, s.w - 1), ph = std::min<int64_t>(2, s.h - 1);
      check_pad<T>(s, nhwc, pw, pw > 0 ? pw - 1 : 0, ph, ph, rng);  // asymmetric where it fits
      check_pad<T>(s, nhwc, 0, pw, ph > 0 ? 1 : 0, 0, rng);
      for (bool relu : {false, true})
        for (bool residual : {false, true}) check_norm<T>(s, nhwc, relu, residual, rng);
    }
  }
}

}  // namespace

int main() {
  std::mt19937 rng(1234);
  run_type<float>(rng);
  run_type<double>(rng);
  run_type<c10::Half>(rng);
  run_type<c10::BFloat16>(rng);
  std::printf("kernels %zu:", g_kernels.size());
  for (const auto& k : g_kernels) std::printf(" %s", k.c_str());
  std::printf("\nkernels %zu, cases %d, checks %d, failed %d\n", g_kernels.size(), g_cases, g_checks, g_failed);
  return g_failed ? 1 : 0;
}
