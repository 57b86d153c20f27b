"""Rewriting an ONNX graph into a new model: the shared plumbing of the graph passes
(`qdq.py` for int8, `winograd.py` for the CPU form). New nodes and initializers get names no
tensor of the source graph has; `finish` keeps the source's opset, IR version and metadata."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class GraphEdit:
    """The nodes of a model's rewritten graph, in order, and the initializers they add."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.source = model
        self.inits = {i.name: i for i in model.graph.initializer}
        self.taken = set(self.inits) | {t for n in model.graph.node for t in (*n.input, *n.output)}
        self.nodes, self.new_inits = [], []
        self._shared: dict = {}
        self.to_array, self._from_array = numpy_helper.to_array, numpy_helper.from_array

    def name(self, base: str) -> str:
        """`base`, or `base_1`, `base_2`... whichever no tensor has yet."""
        out, i = base, 1
        while out in self.taken:
            out, i = f"{base}_{i}", i + 1
        self.taken.add(out)
        return out

    def const(self, base: str, value: np.ndarray) -> str:
        """A new initializer holding `value`; its name."""
        name = self.name(base)
        self.new_inits.append(self._from_array(value, name))
        return name

    def shared(self, base: str, value: np.ndarray) -> str:
        """An initializer holding `value`, made once per edit for equal values (dtype, shape and
        bytes): the constants every rewritten node of a kind reads alike (transform matrices,
        slicing bounds). A runtime then reads, folds and compiles one, not one per node."""
        value = np.ascontiguousarray(value)
        found = (value.dtype.str, value.shape, value.tobytes())
        if found not in self._shared:
            self._shared[found] = self.const(base, value)
        return self._shared[found]

    def op(self, op_type: str, inputs: list[str], base: str, output: str | None = None, **attrs) -> str:
        """Append a node writing a new tensor (or `output`, a name the graph's readers already use)."""
        from onnx import helper

        out = output or self.name(base)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name(f"{base}_op"), **attrs))
        return out

    def keep(self, node) -> None:
        self.nodes.append(node)

    def finish(self):
        """The new `onnx.ModelProto`: the appended nodes, the source's initializers they still read
        plus the new ones, and the source's inputs, outputs, opsets, IR version and metadata."""
        from onnx import helper

        src = self.source
        used = {t for n in self.nodes for t in n.input}
        initializers = [i for i in src.graph.initializer if i.name in used] + self.new_inits
        graph = helper.make_graph(self.nodes, src.graph.name, list(src.graph.input), list(src.graph.output),
                                  initializers)
        out = helper.make_model(graph, opset_imports=list(src.opset_import), producer_name=src.producer_name,
                                producer_version=src.producer_version)
        out.ir_version = src.ir_version
        for prop in src.metadata_props:
            out.metadata_props.add().CopyFrom(prop)
        return out


def save_model(model, path: str | os.PathLike, *, full_check: bool = True) -> Path:
    """Check `model` (with shape inference unless `full_check` is off: a graph the tests already
    prove, made again on a user's first run) and write it atomically to `path`."""
    import onnx

    from cyclegan_tool.fileio import atomic_write

    data = model.SerializeToString()
    onnx.checker.check_model(data, full_check=full_check)  # the bytes: a model is serialized once, not twice
    return atomic_write(path, lambda f: f.write(data))
