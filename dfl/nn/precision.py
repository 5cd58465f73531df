"""bf16 mixed precision (decision 5): the Keras dtype policy a model is built under, and the way
back to float32 when a bf16 step goes non-finite. Weights, optimizer state, network outputs and
losses stay float32 either way; only the layers' computations change."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MIXED_POLICY = "mixed_bfloat16"
FULL_POLICY = "float32"
OPTION = "bf16"


def wants_bf16(options: Mapping[str, Any]) -> bool:
    return bool(options.get(OPTION, False))


def label(options: Mapping[str, Any]) -> str:
    """The precision by name: bf16 or fp32."""
    return "bf16" if wants_bf16(options) else "fp32"


def apply(options: Mapping[str, Any]) -> None:
    """Set the policy every layer built from now on takes (call before building the model)."""
    import keras

    keras.config.set_dtype_policy(MIXED_POLICY if wants_bf16(options) else FULL_POLICY)


def to_float32(models: Iterable[Any]) -> None:
    """Make built models compute in float32 from now on; their (float32) weights are kept.
    A compiled training step must be made again afterwards, since it traced the old dtypes."""
    import keras

    from dfl.nn.keras_internals import sublayers

    keras.config.set_dtype_policy(FULL_POLICY)
    for model in models:
        for layer in sublayers(model, include_self=True):
            layer.dtype_policy = FULL_POLICY
