"""Model forms derived for the CPU runtimes and kept in the user cache (`cache.FileCache`
"onnx"): a checkpoint's generator exported to FP32 ONNX, and an FP32 graph's Winograd form
(export/winograd.py). (An int8 form needs calibration images of the model's input domain: it
comes with a shipped model or from `export --int8`, never from a run.)

Each is named by `cache.key` over the content digest of every file it is made from, what
selects the generator in it (direction, architecture override, norm statistics), the versions
of the libraries that make it and the form's own version; the cache verifies it on every use
and makes it again when it is missing or damaged. `--backend auto` (cyclegan_tool/runner.py)
runs one only within its fidelity bar; files written by `export` stay the direct graph.
"""

from __future__ import annotations

from pathlib import Path

from cyclegan_tool.cache import FileCache, key

# Forms kept, least recently used removed first: 2 GiB holds those of ~16 ResNet-9 ngf64
# checkpoints (45 MB exported, 80 MB Winograd form each).
FORMS = FileCache("onnx", 2 << 30)
EXPORT_VERSION = 2  # of the exported form (2: min_side in the metadata, anti-aliased layers)
DIRECT_VERSION = 1  # of export/direct.py's graphs


def _versions() -> str:
    from cyclegan_tool.runtime.facts import package_version

    return f"torch {package_version('torch')}|onnx {package_version('onnx')}|direct {DIRECT_VERSION}"


def versions() -> str:
    """The versions of every form made here (each also in its own cache name)."""
    from cyclegan_tool.export.winograd import FORM_VERSION

    return f"exported {EXPORT_VERSION}|winograd {FORM_VERSION}|{_versions()}"


def source_id(checkpoint_digest: str, direction: str | None, spec, norm_stats: str) -> str:
    """What names a checkpoint's generator: the file's content and what selects the generator."""
    return key("generator", checkpoint_digest, direction or "default", spec.to_dict() if spec is not None else "auto",
               norm_stats)


def exported_key(source: str) -> str:
    return key("exported", source, EXPORT_VERSION, _versions())


def winograd_key(graph_id: str) -> str:
    from cyclegan_tool.export.winograd import FORM_VERSION

    return key("winograd", graph_id, FORM_VERSION, _versions())


SUFFIX = {"exported": ".onnx", "winograd": ".winograd.onnx"}


def find(kind: str, name: str) -> Path | None:
    """A form already in the cache (verified), made by nothing; None where there is none."""
    return FORMS.get(name, SUFFIX[kind])


def exported(checkpoint: Path, source: str, *, direction: str | None = None, spec=None,
             norm_stats: str = "auto") -> Path:
    """A checkpoint's generator (`source`: its `source_id`) as an FP32 ONNX file, exported on first
    use. Its fidelity is not assumed: the runner compares it with PyTorch FP32 like any candidate."""
    def make(tmp: Path) -> None:
        model = _direct_graph(checkpoint, direction, spec, norm_stats)
        if model is not None:  # the reference ResNet layout: written without torch
            from cyclegan_tool.export.graph_edit import save_model

            save_model(model, tmp, full_check=False)  # tests/test_direct_export.py proves it
            return
        from cyclegan_tool import checkpoints
        from cyclegan_tool.export.onnx_export import export_onnx

        loaded = checkpoints.load_generator(checkpoint, direction=direction, spec=spec, norm_stats=norm_stats)
        export_onnx(loaded, tmp, check=False)

    return FORMS.get_or_make(exported_key(source), SUFFIX["exported"], make)


def exported_graph(checkpoint: Path, source: str, *, direction: str | None = None, spec=None,
                   norm_stats: str = "auto"):
    """The checkpoint's FP32 graph to derive another form from: its exported file where the cache
    has it, else (the reference ResNet layout) the graph in memory, written by no one until a
    way runs the exported file itself, else the file exported now."""
    found = find("exported", exported_key(source))
    if found is not None:
        return found
    model = _direct_graph(checkpoint, direction, spec, norm_stats)
    return model if model is not None else exported(checkpoint, source, direction=direction, spec=spec,
                                                    norm_stats=norm_stats)


def _direct_graph(checkpoint: Path, direction: str | None, spec, norm_stats: str):
    """The checkpoint's graph written without torch (export/direct.py), or None where it has
    another layout (torch exports it)."""
    from cyclegan_tool.export import direct

    weights = direct.read(checkpoint, direction=direction, spec=spec, norm_stats=norm_stats)
    return None if weights is None else direct.graph(weights)


def winograd(graph_id: str, graph) -> Path:
    """The Winograd form of the FP32 ONNX generator `graph()` (a file, or an `onnx.ModelProto`;
    named by `graph_id`: the model's digest, or the `source_id` of the checkpoint it was exported
    from), made on first use; BackendError where the graph has no 3x3 convolution it applies to."""
    from cyclegan_tool.export.winograd import rewrite

    def make(tmp: Path) -> None:
        import onnx

        from cyclegan_tool.errors import BackendError
        from cyclegan_tool.export.graph_edit import save_model

        src = graph()
        model, counts = rewrite(onnx.load(str(src)) if isinstance(src, (str, Path)) else src)
        if not counts["winograd"]:
            raise BackendError(f"{src if isinstance(src, (str, Path)) else graph_id}: no FP32 3x3 convolution to "
                               "compute by Winograd")
        save_model(model, tmp, full_check=False)  # tests/test_winograd.py proves the rewrite

    return FORMS.get_or_make(winograd_key(graph_id), SUFFIX["winograd"], make)
