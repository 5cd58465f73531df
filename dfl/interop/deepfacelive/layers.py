"""Keras functional networks built from dfl.nn.blocks / dfl.nn.archi_networks layers -> ONNX nodes.

Tensors of rank 4 are NCHW inside the ONNX graph (the caller transposes the NHWC input once),
so a (C, H, W) flatten is a plain reshape and NHWC's channel axis (-1) becomes axis 1. Weights
are read as numpy, so any Keras backend works. A layer type not listed in EMITTERS raises
UnsupportedLayerError naming it; subclasses are not accepted for their parents, since they may
compute something else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from dfl.interop.deepfacelive.errors import UnsupportedLayerError
from dfl.interop.deepfacelive.graph import OnnxGraph
from dfl.nn import archi_networks
from dfl.nn import blocks as nn
from dfl.nn.keras_internals import producer

NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}  # a Keras axis of a rank-4 tensor -> ONNX axis
KERNEL_TO_OIHW = (3, 2, 0, 1)  # Keras conv kernel (kh, kw, in, out) -> ONNX (out, in, kh, kw)
D2S_MODE = "DCR"  # depth-column-row: TF's depth_to_space channel order

Shape = tuple[int | None, ...]
Emitter = Callable[["Converter", Any, list[str], list[Shape], str], list[str]]


def onnx_axis(axis: int, rank: int) -> int:
    """The ONNX axis of Keras axis `axis` for a tensor of `rank` (rank 4 is NCHW in ONNX)."""
    axis %= rank
    return NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis


def _numpy(variable: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def _type_name(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


class Converter:
    """Emits ONNX nodes for Keras functional networks into one OnnxGraph."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.graph = graph

    def network(
        self,
        model: keras.Model,
        inputs: Sequence[str],
        prefix: str,
        outputs: Sequence[int] | None = None,
    ) -> list[str]:
        """ONNX names of `model`'s outputs (those indexed by `outputs`, default all) computed
        from the ONNX tensors `inputs`; only the nodes those outputs need are emitted."""
        if len(inputs) != len(model.inputs):
            raise ValueError(f"{model.name} takes {len(model.inputs)} inputs, got {len(inputs)}")
        values = {id(t): name for t, name in zip(model.inputs, inputs, strict=True)}
        wanted = range(len(model.outputs)) if outputs is None else outputs
        return [self._tensor(model.outputs[i], values, prefix) for i in wanted]

    def _tensor(self, tensor: Any, values: dict[int, str], prefix: str) -> str:
        if id(tensor) in values:
            return values[id(tensor)]
        made_by = producer(tensor)
        if made_by is None:
            raise UnsupportedLayerError(f"{tensor!r} is not a functional Keras tensor")
        operation, node = made_by
        sources = list(node.input_tensors)
        inputs = [self._tensor(t, values, prefix) for t in sources]
        shapes = [tuple(t.shape) for t in sources]
        outputs = self.layer(operation, inputs, shapes, f"{prefix}/{operation.name}")
        for t, name in zip(node.output_tensors, outputs, strict=True):
            values[id(t)] = name
        return values[id(tensor)]

    def layer(self, layer: Any, inputs: list[str], shapes: list[Shape], hint: str) -> list[str]:
        """The ONNX outputs of one Keras layer applied to `inputs`."""
        emit = EMITTERS.get(type(layer))
        if emit is not None:
            return emit(self, layer, inputs, shapes, hint)
        if isinstance(layer, keras.Model) and getattr(layer, "outputs", None):
            return self.network(layer, inputs, hint)  # a nested functional network
        known = ", ".join(sorted(cls.__name__ for cls in EMITTERS))
        raise UnsupportedLayerError(
            f"cannot export layer {getattr(layer, 'name', '?')!r} of type {_type_name(layer)}: "
            f"the .dfm converter knows {known}"
        )

    # ------------------------------------------------------------------ shared pieces
    def conv(self, conv: nn.Conv2D, x: str, hint: str) -> str:
        """DFL conv: zero padding k//2 on every side, then a VALID conv with the stride."""
        if type(conv) is not nn.Conv2D:
            raise UnsupportedLayerError(f"cannot export conv layer of type {_type_name(conv)}")
        g = self.graph
        k, p, s = conv.kernel_size, conv.pad, conv.strides
        kernel = g.weight(
            conv.kernel, _numpy(conv.kernel).transpose(KERNEL_TO_OIHW), f"{hint}/W", True
        )
        bias = g.weight(conv.bias, _numpy(conv.bias), f"{hint}/B", True)
        return g.node(
            "Conv",
            [x, kernel, bias],
            hint,
            kernel_shape=[k, k],
            strides=[s, s],
            pads=[p, p, p, p],
        )

    def leaky_relu(self, x: str, slope: float, hint: str) -> str:
        return self.graph.node("LeakyRelu", [x], hint, alpha=float(slope))

    def x_cos_x(self, x: str, hint: str) -> str:
        """DFL's 'c' activation x·cos(x)."""
        cos = self.graph.node("Cos", [x], f"{hint}/cos")
        return self.graph.node("Mul", [x, cos], hint)

    def depth_to_space(self, x: str, size: int, hint: str) -> str:
        return self.graph.node("DepthToSpace", [x], hint, blocksize=int(size), mode=D2S_MODE)

    def activation(self, fn: Any, x: str, hint: str) -> str:
        """A Keras activation function by identity: sigmoid, linear, relu, tanh."""
        if fn is keras.activations.linear:
            return x
        op = ACTIVATIONS.get(fn)
        if op is None:
            raise UnsupportedLayerError(
                f"cannot export activation {getattr(fn, '__name__', fn)!r} in {hint}: "
                f"the .dfm converter knows linear, {', '.join(f.__name__ for f in ACTIVATIONS)}"
            )
        return self.graph.node(op, [x], hint)


ACTIVATIONS = {
    keras.activations.sigmoid: "Sigmoid",
    keras.activations.relu: "Relu",
    keras.activations.tanh: "Tanh",
}


# --------------------------------------------------------------------------- emitters
def _one(inputs: list[str], hint: str) -> str:
    if len(inputs) != 1:
        raise UnsupportedLayerError(f"{hint}: expected one input, got {len(inputs)}")
    return inputs[0]


def _conv2d(cv: Converter, layer: nn.Conv2D, xs: list[str], _s: list[Shape], hint: str):
    return [cv.conv(layer, _one(xs, hint), hint)]


def _downscale(cv: Converter, layer: nn.Downscale, xs: list[str], _s: list[Shape], hint: str):
    y = cv.conv(layer.conv1, _one(xs, hint), f"{hint}/conv1")
    if type(layer) is archi_networks.CosDownscale:
        return [cv.x_cos_x(y, hint)]
    return [cv.leaky_relu(y, nn.DOWNSCALE_SLOPE, hint)]


def _downscale_block(cv: Converter, layer: nn.DownscaleBlock, xs, shapes, hint: str):
    x = _one(xs, hint)
    for down in layer.downs:  # each Downscale dispatched by its own type
        x = cv.layer(down, [x], shapes, f"{hint}/{down.name}")[0]
    return [x]


def _upscale(cv: Converter, layer: nn.Upscale, xs: list[str], _s: list[Shape], hint: str):
    y = cv.conv(layer.conv1, _one(xs, hint), f"{hint}/conv1")
    if type(layer) is archi_networks.CosUpscale:
        y = cv.x_cos_x(y, f"{hint}/act")
    else:
        y = cv.leaky_relu(y, nn.UPSCALE_SLOPE, f"{hint}/act")
    return [cv.depth_to_space(y, nn.UPSCALE_FACTOR, hint)]


def _residual(cv: Converter, layer: nn.ResidualBlock, xs: list[str], _s: list[Shape], hint: str):
    x = _one(xs, hint)
    cosine = type(layer) is archi_networks.CosResidualBlock

    def act(t: str, name: str) -> str:
        return cv.x_cos_x(t, name) if cosine else cv.leaky_relu(t, nn.RESIDUAL_SLOPE, name)

    y = act(cv.conv(layer.conv1, x, f"{hint}/conv1"), f"{hint}/act1")
    y = cv.conv(layer.conv2, y, f"{hint}/conv2")
    return [act(cv.graph.node("Add", [x, y], f"{hint}/add"), hint)]


def _depth_to_space(cv: Converter, layer: nn.DepthToSpace, xs, _s: list[Shape], hint: str):
    return [cv.depth_to_space(_one(xs, hint), layer.size, hint)]


def _pixel_norm(cv: Converter, layer: nn.PixelNorm, xs, shapes: list[Shape], hint: str):
    """x / sqrt(mean(x², last Keras axis) + eps)."""
    g, x = cv.graph, _one(xs, hint)
    axis = onnx_axis(-1, len(shapes[0]))
    square = g.node("Mul", [x, x], f"{hint}/square")
    mean = g.node("ReduceMean", [square], f"{hint}/mean", axes=[axis], keepdims=1)
    eps = g.constant(np.float32(nn.PIXEL_NORM_EPS), f"{hint}/eps")
    norm = g.node("Sqrt", [g.node("Add", [mean, eps], f"{hint}/add_eps")], f"{hint}/sqrt")
    return [g.node("Div", [x, norm], hint)]


def _flatten_chw(cv: Converter, layer: nn.FlattenCHW, xs, shapes: list[Shape], hint: str):
    _, h, w, c = shapes[0]
    shape = cv.graph.constant(np.array([-1, c * h * w]), f"{hint}/shape")
    return [cv.graph.node("Reshape", [_one(xs, hint), shape], hint)]  # NCHW: already C, H, W


def _reshape_chw(cv: Converter, layer: nn.ReshapeCHW, xs, _s: list[Shape], hint: str):
    dims = [-1, layer.channels, layer.height, layer.width]
    shape = cv.graph.constant(np.array(dims), f"{hint}/shape")
    return [cv.graph.node("Reshape", [_one(xs, hint), shape], hint)]  # lands in NCHW


def _dense(cv: Converter, layer: keras.layers.Dense, xs, shapes: list[Shape], hint: str):
    if len(shapes[0]) != 2:
        raise UnsupportedLayerError(
            f"cannot export Dense {layer.name!r} on a rank-{len(shapes[0])} input (only rank 2)"
        )
    g, x = cv.graph, _one(xs, hint)
    kernel = g.weight(layer.kernel, _numpy(layer.kernel), f"{hint}/W", False)
    if layer.use_bias:
        bias = g.weight(layer.bias, _numpy(layer.bias), f"{hint}/B", False)
        y = g.node("Gemm", [x, kernel, bias], f"{hint}/gemm")
    else:
        y = g.node("MatMul", [x, kernel], f"{hint}/matmul")
    return [cv.activation(layer.activation, y, hint)]


def _concatenate(cv: Converter, layer: keras.layers.Concatenate, xs, shapes, hint: str):
    axis = onnx_axis(layer.axis, len(shapes[0]))
    return [cv.graph.node("Concat", xs, hint, axis=axis)]


def _activation(cv: Converter, layer: keras.layers.Activation, xs, _s: list[Shape], hint: str):
    return [cv.activation(layer.activation, _one(xs, hint), hint)]


def _keras_leaky_relu(cv: Converter, layer: keras.layers.LeakyReLU, xs, _s, hint: str):
    return [cv.leaky_relu(_one(xs, hint), float(layer.negative_slope), hint)]


def _add(cv: Converter, layer: keras.layers.Add, xs: list[str], _s: list[Shape], hint: str):
    out = xs[0]
    for i, x in enumerate(xs[1:]):
        out = cv.graph.node("Add", [out, x], f"{hint}/{i}" if len(xs) > 2 else hint)
    return [out]


EMITTERS: dict[type, Emitter] = {
    nn.Conv2D: _conv2d,
    nn.Downscale: _downscale,
    archi_networks.CosDownscale: _downscale,
    nn.DownscaleBlock: _downscale_block,
    archi_networks.CosDownscaleBlock: _downscale_block,
    nn.Upscale: _upscale,
    archi_networks.CosUpscale: _upscale,
    nn.ResidualBlock: _residual,
    archi_networks.CosResidualBlock: _residual,
    nn.DepthToSpace: _depth_to_space,
    nn.PixelNorm: _pixel_norm,
    nn.FlattenCHW: _flatten_chw,
    nn.ReshapeCHW: _reshape_chw,
    keras.layers.Dense: _dense,
    keras.layers.Concatenate: _concatenate,
    keras.layers.Activation: _activation,
    keras.layers.LeakyReLU: _keras_leaky_relu,
    keras.layers.Add: _add,
}
