"""Why an export failed; each message says what went wrong and, where it can, what to do."""

from __future__ import annotations


class ExportError(Exception):
    """The model cannot be exported; nothing was written."""


class UnsupportedLayerError(ExportError):
    """A network holds a layer (or activation) the .dfm converter does not know."""


class VerificationError(ExportError):
    """The written file failed DeepFaceLive's checks or does not match the Keras model."""
