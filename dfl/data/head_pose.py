"""Head pose from aligned landmarks: DFL's 3-D mean face fitted with solvePnP (pitch, yaw, roll)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from dfl.data.landmarks import MEAN_SHAPE_3D, check_landmarks

# Pose estimates are clipped to +-90 degrees.
HALF_PI = math.pi / 2.0


def _rotation_to_euler(rot: np.ndarray) -> tuple[float, float, float]:
    """Euler angles (x, y, z) in radians of a 3x3 rotation matrix, R = Rz·Ry·Rx."""
    sy = math.hypot(rot[0, 0], rot[1, 0])
    if sy > 1e-6:
        x = math.atan2(rot[2, 1], rot[2, 2])
        z = math.atan2(rot[1, 0], rot[0, 0])
    else:
        x = math.atan2(-rot[1, 2], rot[1, 1])
        z = 0.0
    y = math.atan2(-rot[2, 0], sy)
    return x, y, z


def estimate_pitch_yaw_roll(landmarks: np.ndarray, size: int) -> tuple[float, float, float]:
    """Head pose (pitch, yaw, roll) in radians, each in [-pi/2, pi/2], from aligned landmarks.

    Fits DFL's 3-D mean face with solvePnP for a pinhole camera of focal length ``size`` centred on
    a ``size`` x ``size`` image.
    """
    lm = check_landmarks(landmarks)
    idx = np.r_[0:27, 30:36]
    camera = np.array(
        [[size, 0.0, size / 2.0], [0.0, size, size / 2.0], [0.0, 0.0, 1.0]], dtype=np.float64
    )
    ok, rvec, _ = cv2.solvePnP(
        MEAN_SHAPE_3D[idx].astype(np.float32),
        lm[idx].astype(np.float32),
        camera,
        np.zeros((4, 1)),
    )
    if not ok:
        return 0.0, 0.0, 0.0
    pitch, yaw, roll = _rotation_to_euler(cv2.Rodrigues(rvec)[0])
    clip = lambda v: float(np.clip(v, -HALF_PI, HALF_PI))  # noqa: E731
    return -clip(pitch), clip(yaw), clip(roll)


def estimate_yaw(landmarks: np.ndarray, size: int) -> float:
    """Head yaw in radians (see estimate_pitch_yaw_roll); used for uniform-yaw sampling."""
    return estimate_pitch_yaw_roll(landmarks, size)[1]
