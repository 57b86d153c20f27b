"""One exception family. The CLI prints a `CycleGANError` as one line and exits with 1;
anything else is a bug and keeps its traceback."""


class CycleGANError(Exception):
    """A problem the user can fix: bad input, an incompatible file, a missing dependency."""


class DataError(CycleGANError):
    """A dataset folder or an image file cannot be used."""


class CheckpointError(CycleGANError):
    """A checkpoint or weights file cannot be read or does not fit the architecture."""


class ConfigError(CycleGANError):
    """An option or combination of options is invalid."""


class ExportError(CycleGANError):
    """Exporting to ONNX or building an engine failed."""


class BackendError(CycleGANError):
    """An inference backend cannot run the model as asked."""


class ModelUnusable(BackendError):
    """The runtime cannot run this model at all (it fails to load or compile it): one error for
    the run, not a failure of every file."""


class MissingDependencyError(CycleGANError):
    """An optional library is not installed."""

    def __init__(self, package: str, purpose: str, install: str | None = None):
        hint = install or f"pip install {package}"
        super().__init__(f"{purpose} needs the '{package}' package, which is not installed ({hint})")
