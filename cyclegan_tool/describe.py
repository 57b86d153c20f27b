"""`describe_artifact(path)`: what any file the tool reads or writes is, by its suffix."""

from __future__ import annotations

from pathlib import Path

from cyclegan_tool.errors import CycleGANError


def describe_artifact(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise CycleGANError(f"{p}: no such file")
    suffix = p.suffix.lower()
    from cyclegan_tool.imageio import is_image_name

    if is_image_name(p):
        raise CycleGANError(f"{p}: an image, not a model file (info describes .pt, .pth, .onnx and .plan files)")
    if suffix == ".onnx":
        from cyclegan_tool.onnx_metadata import describe_onnx

        return describe_onnx(p)
    if suffix in (".plan", ".engine") or p.name.endswith(".plan.json"):
        from cyclegan_tool.sidecar import describe_engine

        return describe_engine(p)
    from cyclegan_tool import checkpoints

    return checkpoints.describe(p)
