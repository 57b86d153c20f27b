"""Inference: backends (TensorRT, ONNX Runtime, OpenVINO, PyTorch) behind one interface, the
planner that decides which runs (plan.py), the fidelity check it decides by (fidelity_check.py), and
the folder pipeline that `convert` and the GUI share.

    backend, why = cyclegan_tool.runner.open_backend(resolved)     # plan, forms, fidelity check
    with backend:
        for event in run_convert(plan_jobs("in", "out", opts), backend, opts):
            ...
"""

from cyclegan_tool.runtime.base import Backend, ModelInfo
from cyclegan_tool.runtime.jobs import Job, plan_jobs, plan_many
from cyclegan_tool.runtime.options import ConvertOptions
from cyclegan_tool.runtime.pipeline import Progress, Summary, run_convert
from cyclegan_tool.runtime.video import FrameProgress

__all__ = ["Backend", "ConvertOptions", "FrameProgress", "Job", "ModelInfo", "Progress", "Summary", "plan_jobs",
           "plan_many", "run_convert"]
