"""FP32 ONNX graph -> strongly typed FP16 graph with instance norm computed in FP32.

Every float initializer and constant becomes float16, the graph's input and output
become float16, and each `InstanceNormalization` gets `Cast(float32)` before it and
`Cast(float16)` after it, keeping its scale and bias in float32. FP16 instance norm over
large images overflows its variance sum, a documented source of broken outputs; both
TensorRT 10+/11 and TensorRT for RTX take the precision from such a graph's types.
"""

from __future__ import annotations

import copy


def to_fp16(model):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = copy.deepcopy(model)
    graph = model.graph
    norm_params = {name for node in graph.node if node.op_type == "InstanceNormalization"
                   for name in node.input[1:]}

    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT and init.name not in norm_params:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name)
            graph.initializer[i].CopyFrom(half)

    nodes = []
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] not in norm_params:
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16),
                                                            attr.t.name))
        if node.op_type == "InstanceNormalization":
            x, y = node.input[0], node.output[0]
            nodes.append(helper.make_node("Cast", [x], [x + "/fp32"], to=TensorProto.FLOAT, name=node.name + "/cast_in"))
            node.input[0] = x + "/fp32"
            node.output[0] = y + "/fp32"
            nodes.append(node)
            nodes.append(helper.make_node("Cast", [y + "/fp32"], [y], to=TensorProto.FLOAT16,
                                          name=node.name + "/cast_out"))
            continue
        if node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    for value in list(graph.input) + list(graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)
