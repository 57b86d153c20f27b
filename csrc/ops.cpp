// The op schemas, declared once. Kernels register themselves per device in their own files.
#include <Python.h>
#include <torch/library.h>

// An empty Python module, so that `import cyclegan_tool._C` loads this library and runs the
// registrations below.
extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(cyclegan_tool, m) {
  // x: [N, C, H, W] (NCHW or channels-last); pad: (left, right, top, bottom), each < the side.
  m.def("reflection_pad2d(Tensor x, int[] pad) -> Tensor");
  m.def("reflection_pad2d_backward(Tensor grad_out, int[] pad, SymInt in_h, SymInt in_w) -> Tensor");
  // out = act(instance_norm(x) * weight + bias) + residual; also returns per-(n, c) mean and
  // 1 / sqrt(var + eps) in float32 (float64 for float64 input), shape [N, C].
  m.def("instance_norm(Tensor x, Tensor? weight, Tensor? bias, Tensor? residual, float eps, bool relu)"
        " -> (Tensor, Tensor, Tensor)");
  // Gradients for x, weight and bias ([C], statistics dtype); the residual's gradient is grad_out.
  m.def("instance_norm_backward(Tensor grad_out, Tensor x, Tensor mean, Tensor rstd, Tensor? weight,"
        " Tensor? bias, bool relu) -> (Tensor, Tensor, Tensor)");
}
