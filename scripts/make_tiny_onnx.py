"""Writes tests/fixtures/tiny/affine.onnx: Y = Relu(X @ W + B) with fixed weights, X [N, 3] -> Y [N, 2].
The ONNX Runtime binding test recomputes it in C# and compares. Run: /usr/bin/python3 scripts/make_tiny_onnx.py"""
from pathlib import Path

import onnx
from onnx import TensorProto, helper

W = [0.5, -1.0, 2.0, 0.25, -0.75, 1.5]  # [3, 2], row-major
B = [0.1, -0.2]

graph = helper.make_graph(
    [
        helper.make_node("MatMul", ["X", "W"], ["XW"]),
        helper.make_node("Add", ["XW", "B"], ["Z"]),
        helper.make_node("Relu", ["Z"], ["Y"]),
    ],
    "affine",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3])],
    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", 2])],
    initializer=[
        helper.make_tensor("W", TensorProto.FLOAT, [3, 2], W),
        helper.make_tensor("B", TensorProto.FLOAT, [2], B),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="mambast-tests")
model.ir_version = 8
helper.set_model_props(model, {"purpose": "onnxruntime binding test"})
onnx.checker.check_model(model)
out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "tiny" / "affine.onnx"
out.parent.mkdir(parents=True, exist_ok=True)
onnx.save(model, out)
print(out)
