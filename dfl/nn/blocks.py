"""Backend-neutral Keras 3 building blocks of DFL's networks (NHWC), after DFL's leras layers."""

from __future__ import annotations

import contextlib
import math
import random
from typing import Any

import keras
import numpy as np
from keras import ops

PIXEL_NORM_EPS = 1e-6
DOWNSCALE_SLOPE = 0.1
UPSCALE_SLOPE = 0.1
RESIDUAL_SLOPE = 0.2
UPSCALE_FACTOR = 2


def depth_to_space(x: Any, size: int = UPSCALE_FACTOR) -> Any:
    """TF/DCR pixel shuffle: channel (dy·s + dx)·oc + c -> pixel (s·h + dy, s·w + dx), channel c."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    oc = c // (size * size)
    x = ops.reshape(x, (-1, h, w, size, size, oc))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, h * size, w * size, oc))


def pixel_norm(x: Any, axis: int = -1) -> Any:
    return ops.multiply(
        x, ops.rsqrt(ops.mean(ops.square(x), axis=axis, keepdims=True) + PIXEL_NORM_EPS)
    )


def flatten_chw(x: Any) -> Any:
    """Flatten NHWC to (B, C·H·W) in (C, H, W) order, as DFL does for its dense layers."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    return ops.reshape(ops.transpose(x, (0, 3, 1, 2)), (-1, c * h * w))


def reshape_chw(x: Any, height: int, width: int, channels: int) -> Any:
    """Read flat vectors in (C, H, W) order back into NHWC."""
    return ops.transpose(ops.reshape(x, (-1, channels, height, width)), (0, 2, 3, 1))


def no_grad() -> contextlib.AbstractContextManager:
    """A context without gradient recording (torch needs it for inference; others do not)."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


class GlorotUniform(keras.initializers.Initializer):
    """Glorot-uniform drawn with numpy: fast on every backend (JAX compiles each shape's random op)
    and the same weights on every backend after keras.utils.set_random_seed (it seeds `random`)."""

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def __call__(self, shape: tuple, dtype: Any = None) -> np.ndarray:
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(6.0 / max(1.0, fan_in + fan_out))
        seed = self.seed if self.seed is not None else random.getrandbits(64)
        values = np.random.default_rng(seed).uniform(-limit, limit, size=shape)
        return values.astype(keras.backend.standardize_dtype(dtype or keras.config.floatx()))

    def get_config(self) -> dict:
        return {"seed": self.seed}


def _fans(shape: tuple) -> tuple[float, float]:
    """Keras/TF fans: a kernel (..., in, out) has fan_in = receptive field · in."""
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


class Conv2D(keras.layers.Layer):
    """DFL conv: zero padding k//2 on every side, then a VALID conv; Glorot kernel, zero bias."""

    def __init__(self, filters: int, kernel_size: int = 3, strides: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.pad = kernel_size // 2

    def build(self, input_shape: tuple) -> None:
        k = self.kernel_size
        self.kernel = self.add_weight(
            shape=(k, k, input_shape[-1], self.filters),
            initializer=GlorotUniform(),
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, x: Any) -> Any:
        if self.strides == 1 and self.kernel_size % 2 == 1:
            # stride 1, odd k: "same" pads k//2 on every side, exactly DFL's padding
            y = ops.conv(x, self.kernel, strides=1, padding="same")
        else:
            if self.pad:
                p = self.pad
                x = ops.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
            y = ops.conv(x, self.kernel, strides=self.strides, padding="valid")
        return y + self.bias

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        def size(n: int | None) -> int | None:
            if n is None:
                return None
            return (n + 2 * self.pad - self.kernel_size) // self.strides + 1

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), self.filters)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides)
        return config


class Downscale(keras.layers.Layer):
    """Conv k×k stride 2 then leaky ReLU 0.1: halves the spatial size."""

    def __init__(self, filters: int, kernel_size: int = 5, **kwargs: Any):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.conv1 = Conv2D(filters, kernel_size, strides=2, name="conv1")

    def build(self, input_shape: tuple) -> None:
        self.conv1.build(input_shape)

    def call(self, x: Any) -> Any:
        return ops.leaky_relu(self.conv1(x), DOWNSCALE_SLOPE)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return self.conv1.compute_output_shape(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size)
        return config


class DownscaleBlock(keras.layers.Layer):
    """`n_downscales` Downscales; layer i outputs filters·min(2**i, 8) channels."""

    def __init__(self, filters: int, n_downscales: int, kernel_size: int = 5, **kwargs: Any):
        super().__init__(**kwargs)
        self.filters = filters
        self.n_downscales = n_downscales
        self.kernel_size = kernel_size
        self.downs = [
            Downscale(filters * min(2**i, 8), kernel_size, name=f"downs_{i}")
            for i in range(n_downscales)
        ]

    def build(self, input_shape: tuple) -> None:
        shape = input_shape
        for down in self.downs:
            down.build(shape)
            shape = down.compute_output_shape(shape)

    def call(self, x: Any) -> Any:
        for down in self.downs:
            x = down(x)
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        shape = input_shape
        for down in self.downs:
            shape = down.compute_output_shape(shape)
        return shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            filters=self.filters, n_downscales=self.n_downscales, kernel_size=self.kernel_size
        )
        return config


class Upscale(keras.layers.Layer):
    """Conv 3×3 to 4·filters, leaky ReLU 0.1, then depth_to_space(2): doubles the spatial size."""

    def __init__(self, filters: int, kernel_size: int = 3, **kwargs: Any):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.conv1 = Conv2D(filters * UPSCALE_FACTOR**2, kernel_size, name="conv1")

    def build(self, input_shape: tuple) -> None:
        self.conv1.build(input_shape)

    def call(self, x: Any) -> Any:
        return depth_to_space(ops.leaky_relu(self.conv1(x), UPSCALE_SLOPE))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        b, h, w, _ = input_shape
        up = UPSCALE_FACTOR
        return (b, None if h is None else h * up, None if w is None else w * up, self.filters)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size)
        return config


class ResidualBlock(keras.layers.Layer):
    """y = lrelu(conv1(x), 0.2); y = conv2(y); out = lrelu(x + y, 0.2)."""

    def __init__(self, filters: int, kernel_size: int = 3, **kwargs: Any):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.conv1 = Conv2D(filters, kernel_size, name="conv1")
        self.conv2 = Conv2D(filters, kernel_size, name="conv2")

    def build(self, input_shape: tuple) -> None:
        self.conv1.build(input_shape)
        self.conv2.build(self.conv1.compute_output_shape(input_shape))

    def call(self, x: Any) -> Any:
        y = ops.leaky_relu(self.conv1(x), RESIDUAL_SLOPE)
        y = self.conv2(y)
        return ops.leaky_relu(x + y, RESIDUAL_SLOPE)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size)
        return config


class DepthToSpace(keras.layers.Layer):
    """Layer form of depth_to_space (DCR order)."""

    def __init__(self, size: int = UPSCALE_FACTOR, **kwargs: Any):
        super().__init__(**kwargs)
        self.size = size

    def call(self, x: Any) -> Any:
        return depth_to_space(x, self.size)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        b, h, w, c = input_shape
        s = self.size
        return (b, None if h is None else h * s, None if w is None else w * s, c // (s * s))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(size=self.size)
        return config


class PixelNorm(keras.layers.Layer):
    """x · rsqrt(mean(x², last axis) + 1e-6)."""

    def call(self, x: Any) -> Any:
        return pixel_norm(x)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape


class FlattenCHW(keras.layers.Layer):
    """Flatten NHWC in (C, H, W) order."""

    def call(self, x: Any) -> Any:
        return flatten_chw(x)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        b, h, w, c = input_shape
        return (b, h * w * c)


class ReshapeCHW(keras.layers.Layer):
    """Reshape flat (C, H, W)-ordered vectors to NHWC."""

    def __init__(self, height: int, width: int, channels: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.height = height
        self.width = width
        self.channels = channels

    def call(self, x: Any) -> Any:
        return reshape_chw(x, self.height, self.width, self.channels)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.height, self.width, self.channels)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(height=self.height, width=self.width, channels=self.channels)
        return config


def sigmoid_output(name: str) -> keras.layers.Activation:
    """A network's final sigmoid; float32 under bf16 mixed precision, so losses see float32."""
    return keras.layers.Activation("sigmoid", name=name, dtype="float32")


def dense(units: int, name: str) -> keras.layers.Dense:
    """DFL dense: Glorot-uniform kernel, zero bias, no activation."""
    return keras.layers.Dense(
        units, kernel_initializer=GlorotUniform(), bias_initializer="zeros", name=name
    )


CUSTOM_OBJECTS = {
    cls.__name__: cls
    for cls in (
        GlorotUniform,
        Conv2D,
        Downscale,
        DownscaleBlock,
        Upscale,
        ResidualBlock,
        DepthToSpace,
        PixelNorm,
        FlattenCHW,
        ReshapeCHW,
    )
}
