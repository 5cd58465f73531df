"""A small ONNX graph builder: unique names, nodes, constants and (optionally float16) weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dfl import __version__
from dfl.interop.deepfacelive import contract


class OnnxGraph:
    """Collects the nodes and initializers of one graph; names stay unique and readable.

    `quantize` stores conv weights as float16 with a Cast back to float32 (DFL's "Export
    quantized?"); everything computes in float32.
    """

    def __init__(self, quantize: bool = False) -> None:
        self.quantize = quantize
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._used: set[str] = set()
        self._weights: dict[tuple[int, bool], str] = {}  # (id(variable), as fp16) -> name
        self._constants: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    def name(self, hint: str) -> str:
        """`hint`, or `hint_1`, `hint_2`, ... when taken."""
        candidate, n = hint, 0
        while candidate in self._used:
            n += 1
            candidate = f"{hint}_{n}"
        self._used.add(candidate)
        return candidate

    def reserve(self, name: str) -> None:
        """Claim an exact name (a graph input or output) before nodes are added."""
        if name in self._used:
            raise ValueError(f"ONNX name {name!r} is already used")
        self._used.add(name)

    def node(
        self,
        op: str,
        inputs: Sequence[str],
        hint: str,
        output: str | None = None,
        **attrs: Any,
    ) -> str:
        """Add one single-output node; returns its output name (`output` if given)."""
        out = output if output is not None else self.name(hint)
        self.nodes.append(
            helper.make_node(op, list(inputs), [out], name=self.name(f"{hint}/{op}"), **attrs)
        )
        return out

    def constant(self, value: np.ndarray | Sequence[Any], hint: str) -> str:
        """An initializer for a small constant (shapes, axes, epsilons); equal ones are shared."""
        array = np.asarray(value)
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        elif array.dtype.kind in "iu":
            array = array.astype(np.int64)
        key = (array.dtype.str, array.tobytes(), array.shape)
        if key not in self._constants:
            name = self.name(hint)
            self.initializers.append(numpy_helper.from_array(array, name))
            self._constants[key] = name
        return self._constants[key]

    def weight(self, variable: Any, array: np.ndarray, hint: str, quantizable: bool) -> str:
        """A trained weight, stored once however often its layer is called; float16 plus a
        Cast when quantizing and the weight is quantizable (conv weights)."""
        half = self.quantize and quantizable
        key = (id(variable), half)
        if key in self._weights:
            return self._weights[key]
        array = np.asarray(array, dtype=np.float32)
        if half:
            stored = self.name(f"{hint}_fp16")
            self.initializers.append(numpy_helper.from_array(array.astype(np.float16), stored))
            name = self.node("Cast", [stored], hint, to=TensorProto.FLOAT)
        else:
            name = self.name(hint)
            self.initializers.append(numpy_helper.from_array(array, name))
        self._weights[key] = name
        return name

    def to_model(
        self,
        graph_name: str,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
        doc: str = "",
    ) -> onnx.ModelProto:
        """The ModelProto at the contract's opset and IR version."""
        graph = helper.make_graph(
            self.nodes, graph_name, list(inputs), list(outputs), self.initializers, doc_string=doc
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", contract.OPSET)],
            producer_name=contract.PRODUCER,
            producer_version=__version__,
        )
        # onnx writes a newer IR version than onnxruntime 1.15 reads
        model.ir_version = contract.IR_VERSION
        return model


def tensor_info(name: str, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
    """A float32 graph input or output; a str dimension is symbolic (dynamic)."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))
