"""DeepFaceLive `.dfm` export (decision 21): our Keras networks -> ONNX without tf2onnx.

`dfl.models.loading.load_saved_model(folder)` then `export_saved_model(model, output,
quantize)`; or `write_dfm` for networks already in memory. Headless: errors are ExportError
subclasses with a message.
"""

from __future__ import annotations

from dfl.interop.deepfacelive.dfm import (
    ExportResult,
    default_output,
    export_saved_model,
    write_dfm,
)
from dfl.interop.deepfacelive.errors import ExportError, UnsupportedLayerError, VerificationError
from dfl.interop.deepfacelive.verify import Verification

__all__ = [
    "ExportError",
    "ExportResult",
    "UnsupportedLayerError",
    "Verification",
    "VerificationError",
    "default_output",
    "export_saved_model",
    "write_dfm",
]
