"""cyclegan-tool: train CycleGAN on two image folders, export it, and translate folders fast.

The package imports with torch alone; torchvision, ONNX, ONNX Runtime, TensorRT and Qt
are imported lazily by the modules that need them.

Layout:
    models/    network registry (generators, discriminators) with reference key layouts
    train/     the trainer (`cyclegan-tool train`)
    export/    ONNX and TensorRT export (`cyclegan-tool export`)
    runtime/   inference backends and the folder pipeline (`cyclegan-tool convert`)
    gui/       the PySide6 desktop converter (`cyclegan-tool gui`)
    cli/       thin Click entry points over the above
"""

import sys
import types

__version__ = "0.1.0"

_API = ("bench", "convert", "convert_events", "describe_model", "evaluate", "export", "load_model", "resolve_model",
        "shipped_models", "train")


class _Package(types.ModuleType):
    """`cyclegan_tool.train` and `cyclegan_tool.export` are API functions although subpackages of
    those names exist: importing a subpackage does not rebind the name (the subpackages stay
    importable as `from cyclegan_tool.train import trainer`)."""

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    """The public API (cyclegan_tool/api.py), imported on first use so `import cyclegan_tool` stays light."""
    if name in _API:
        from cyclegan_tool import api

        return getattr(api, name)
    raise AttributeError(f"module 'cyclegan_tool' has no attribute '{name}'")
