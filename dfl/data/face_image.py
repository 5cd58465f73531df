"""Decoding a face's pixels: a loose image file or a slice of a faceset.pak as uint8 BGR."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from dfl.data.faceset import FaceSample, FacesetError


def read_image(sample: FaceSample | str | Path) -> np.ndarray:
    """Decode a face image as uint8 BGR (h, w, 3); grey is expanded, alpha dropped.

    A sample from a faceset.pak is read from its slice of the pak. Works with non-ASCII paths on
    Windows (reads the bytes with numpy, decodes with OpenCV).
    Raises FacesetError naming the file when it cannot be read.
    """
    path = Path(sample.path if isinstance(sample, FaceSample) else sample)
    packed = sample.packed if isinstance(sample, FaceSample) else None
    try:
        if packed is not None:
            data = np.frombuffer(packed.read(), dtype=np.uint8)
        else:
            data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise FacesetError(f"cannot read the face image {path}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise FacesetError(f"cannot read the face image {path}: the file is not a readable image")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] in (1, 2):  # grey, grey + alpha
        image = cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = image[..., :3]
    return np.ascontiguousarray(image)
