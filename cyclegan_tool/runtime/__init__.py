"""Inference: backends (TensorRT, ONNX Runtime, PyTorch) behind one interface, and the
folder pipeline that `convert` and the GUI share.

    backend, why = make_backend("h2z.onnx")
    with backend:
        for event in run_convert(plan_jobs("in", "out", opts), backend, opts):
            ...
"""

from cyclegan_tool.runtime.base import Backend, ModelInfo
from cyclegan_tool.runtime.jobs import Job, plan_jobs, plan_many
from cyclegan_tool.runtime.options import ConvertOptions
from cyclegan_tool.runtime.pipeline import Progress, Summary, run_convert
from cyclegan_tool.runtime.select import make_backend

__all__ = ["Backend", "ConvertOptions", "Job", "ModelInfo", "Progress", "Summary", "make_backend",
           "plan_jobs", "plan_many", "run_convert"]
