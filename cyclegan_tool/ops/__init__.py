"""Custom reflection-pad and instance-norm ops (csrc/) and the `--ops native|custom|auto` switch.

    from cyclegan_tool.ops import apply_ops
    apply_ops(generator, "custom", device)   # same state_dict keys, custom kernels

ONNX export always sees the standard ops, so engines never need a plugin.
"""

from cyclegan_tool.ops.functional import instance_norm, instance_norm_reference, reflection_pad2d
from cyclegan_tool.ops.library import HAVE_EXTENSION, has_kernel
from cyclegan_tool.ops.modules import OPS_MODES, CustomReflectionPad2d, FusedInstanceNorm, apply_ops, resolve

__all__ = ["HAVE_EXTENSION", "OPS_MODES", "CustomReflectionPad2d", "FusedInstanceNorm", "apply_ops",
           "has_kernel", "instance_norm", "instance_norm_reference", "reflection_pad2d", "resolve"]
