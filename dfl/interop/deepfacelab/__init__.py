"""Import DeepFaceLab models (`<name>_<Class>_data.dat` and its `.npy` networks) into the
project's own format; headless (no prompts or prints). DFL's pickles are read only through
dfl.data.jpeg_metadata's allow-list unpickler (decision 8)."""

from dfl.interop.deepfacelab.files import (
    MODEL_CLASSES,
    DflModelFiles,
    find_dfl_model,
    find_dfl_models,
)
from dfl.interop.deepfacelab.reader import DflFileRefusedError, DflModelError

__all__ = [
    "MODEL_CLASSES",
    "DflFileRefusedError",
    "DflModelError",
    "DflModelFiles",
    "find_dfl_model",
    "find_dfl_models",
]
