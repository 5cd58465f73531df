"""Face geometry on 68 landmarks: face types, landmark groups, DFL's mean face and the alignment
matrices. Masks drawn from landmarks live in dfl/data/face_masks.py, the head pose in
dfl/data/head_pose.py."""

from __future__ import annotations

import math

import cv2
import numpy as np

# --- Face types ---------------------------------------------------------------------------------

HALF_FACE = "half_face"
MIDFULL_FACE = "midfull_face"
FULL_FACE = "full_face"
FULL_FACE_NO_ALIGN = "full_face_no_align"
WHOLE_FACE = "whole_face"
HEAD = "head"
HEAD_NO_ALIGN = "head_no_align"
MARK_ONLY = "mark_only"

# DFL's names in its "each contains the previous" order (mark_only carries no crop).
FACE_TYPES: tuple[str, ...] = (
    HALF_FACE,
    MIDFULL_FACE,
    FULL_FACE,
    FULL_FACE_NO_ALIGN,
    WHOLE_FACE,
    HEAD,
    HEAD_NO_ALIGN,
    MARK_ONLY,
)

# DFL's integer codes (facelib FaceType enum), useful when comparing coverage.
FACE_TYPE_RANK: dict[str, int] = {
    HALF_FACE: 0,
    MIDFULL_FACE: 1,
    FULL_FACE: 2,
    FULL_FACE_NO_ALIGN: 3,
    WHOLE_FACE: 4,
    HEAD: 10,
    HEAD_NO_ALIGN: 20,
    MARK_ONLY: 100,
}

# Short option codes asked by SAEHD / AMP ("Face type ( h/mf/f/wf/head )").
FACE_TYPE_CODES: dict[str, str] = {
    "h": HALF_FACE,
    "mf": MIDFULL_FACE,
    "f": FULL_FACE,
    "wf": WHOLE_FACE,
    "head": HEAD,
}
FACE_TYPE_TO_CODE: dict[str, str] = {v: k for k, v in FACE_TYPE_CODES.items()}

# Padding around the unit landmark square, in units of the square's diagonal / sqrt(2).
PADDING_HALF = 0.0
PADDING_MIDFULL = 0.0675
PADDING_FULL = 0.2109375
PADDING_WHOLE = 0.40
PADDING_HEAD = 0.70

# (padding, remove_align) per croppable face type.
FACE_TYPE_PADDING: dict[str, tuple[float, bool]] = {
    HALF_FACE: (PADDING_HALF, False),
    MIDFULL_FACE: (PADDING_MIDFULL, False),
    FULL_FACE: (PADDING_FULL, False),
    FULL_FACE_NO_ALIGN: (PADDING_FULL, True),
    WHOLE_FACE: (PADDING_WHOLE, False),
    HEAD: (PADDING_HEAD, False),
    HEAD_NO_ALIGN: (PADDING_HEAD, True),
}

# Centre shifts toward the top of the face, as fractions of the unit square's side.
WHOLE_FACE_UP_SHIFT = 0.07
HEAD_UP_SHIFT = 0.50

# Landmark index ranges (68-point iBUG layout).
JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)
LEFT_BROW = slice(22, 27)
NOSE_RIDGE = slice(27, 31)
NOSE_BOTTOM = slice(31, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH_OUTER = slice(48, 60)
MOUTH_INNER = slice(60, 68)
N_LANDMARKS = 68

# DFL's mean face shape for landmarks 17..48 and 54, inside a unit square
# (facelib/LandmarksProcessor.py: landmarks_2D_new).
MEAN_SHAPE_2D = np.array(
    [
        [0.000213256, 0.106454],  # 17
        [0.0752622, 0.038915],  # 18
        [0.18113, 0.0187482],  # 19
        [0.29077, 0.0344891],  # 20
        [0.393397, 0.0773906],  # 21
        [0.586856, 0.0773906],  # 22
        [0.689483, 0.0344891],  # 23
        [0.799124, 0.0187482],  # 24
        [0.904991, 0.038915],  # 25
        [0.98004, 0.106454],  # 26
        [0.490127, 0.203352],  # 27
        [0.490127, 0.307009],  # 28
        [0.490127, 0.409805],  # 29
        [0.490127, 0.515625],  # 30
        [0.36688, 0.587326],  # 31
        [0.426036, 0.609345],  # 32
        [0.490127, 0.628106],  # 33
        [0.554217, 0.609345],  # 34
        [0.613373, 0.587326],  # 35
        [0.121737, 0.216423],  # 36
        [0.187122, 0.178758],  # 37
        [0.265825, 0.179852],  # 38
        [0.334606, 0.231733],  # 39
        [0.260918, 0.245099],  # 40
        [0.182743, 0.244077],  # 41
        [0.645647, 0.231733],  # 42
        [0.714428, 0.179852],  # 43
        [0.793132, 0.178758],  # 44
        [0.858516, 0.216423],  # 45
        [0.79751, 0.244077],  # 46
        [0.719335, 0.245099],  # 47
        [0.254149, 0.780233],  # 48
        [0.726104, 0.780233],  # 54
    ],
    dtype=np.float64,
)
# Which of the 68 landmarks line up with MEAN_SHAPE_2D.
MEAN_SHAPE_INDICES = np.array([*range(17, 49), 54])

# DFL's 3-D mean face (facelib/LandmarksProcessor.py: landmarks_68_3D), used for pose estimates.
MEAN_SHAPE_3D = np.array(
    [
        [-73.393523, -29.801432, 47.667532],
        [-72.775014, -10.949766, 45.909403],
        [-70.533638, 7.929818, 44.842580],
        [-66.850058, 26.074280, 43.141114],
        [-59.790187, 42.564390, 38.635298],
        [-48.368973, 56.481080, 30.750622],
        [-34.121101, 67.246992, 18.456453],
        [-17.875411, 75.056892, 3.609035],
        [0.098749, 77.061286, -0.881698],
        [17.477031, 74.758448, 5.181201],
        [32.648966, 66.929021, 19.176563],
        [46.372358, 56.311389, 30.770570],
        [57.343480, 42.419126, 37.628629],
        [64.388482, 25.455880, 40.886309],
        [68.212038, 6.990805, 42.281449],
        [70.486405, -11.666193, 44.142567],
        [71.375822, -30.365191, 47.140426],
        [-61.119406, -49.361602, 14.254422],
        [-51.287588, -58.769795, 7.268147],
        [-37.804800, -61.996155, 0.442051],
        [-24.022754, -61.033399, -6.606501],
        [-11.635713, -56.686759, -11.967398],
        [12.056636, -57.391033, -12.051204],
        [25.106256, -61.902186, -7.315098],
        [38.338588, -62.777713, -1.022953],
        [51.191007, -59.302347, 5.349435],
        [60.053851, -50.190255, 11.615746],
        [0.653940, -42.193790, -13.380835],
        [0.804809, -30.993721, -21.150853],
        [0.992204, -19.944596, -29.284036],
        [1.226783, -8.414541, -36.948060],
        [-14.772472, 2.598255, -20.132003],
        [-7.180239, 4.751589, -23.536684],
        [0.555920, 6.562900, -25.944448],
        [8.272499, 4.661005, -23.695741],
        [15.214351, 2.643046, -20.858157],
        [-46.047290, -37.471411, 7.037989],
        [-37.674688, -42.730510, 3.021217],
        [-27.883856, -42.711517, 1.353629],
        [-19.648268, -36.754742, -0.111088],
        [-28.272965, -35.134493, -0.147273],
        [-38.082418, -34.919043, 1.476612],
        [19.265868, -37.032306, -0.665746],
        [27.894191, -43.342445, 0.247660],
        [37.437529, -43.110822, 1.696435],
        [45.170805, -38.086515, 4.894163],
        [38.196454, -35.532024, 0.282961],
        [28.764989, -35.484289, -1.172675],
        [-28.916267, 28.612716, -2.240310],
        [-17.533194, 22.172187, -15.934335],
        [-6.684590, 19.029051, -22.611355],
        [0.381001, 20.721118, -23.748437],
        [8.375443, 19.035460, -22.721995],
        [18.876618, 22.394109, -15.610679],
        [28.794412, 28.079924, -3.217393],
        [19.057574, 36.298248, -14.987997],
        [8.956375, 39.634575, -22.554245],
        [0.381549, 40.395647, -23.591626],
        [-7.428895, 39.836405, -22.406106],
        [-18.160634, 36.677899, -15.121907],
        [-24.377490, 28.677771, -4.785684],
        [-6.897633, 25.475976, -20.893742],
        [0.340663, 26.014269, -22.220479],
        [8.444722, 25.326198, -21.025520],
        [24.474473, 28.323008, -5.712776],
        [8.449166, 30.596216, -20.671489],
        [0.205322, 31.408738, -21.903670],
        [-7.198266, 30.844876, -20.328022],
    ],
    dtype=np.float64,
)


def face_type_from_code(code: str) -> str:
    """Return the DFL face-type name for a short option code ('wf' -> 'whole_face') or a name."""
    key = code.strip().lower()
    if key in FACE_TYPE_CODES:
        return FACE_TYPE_CODES[key]
    if key in FACE_TYPE_RANK:
        return key
    raise ValueError(
        f"unknown face type {code!r}: expected one of {', '.join(FACE_TYPE_CODES)} "
        f"or {', '.join(FACE_TYPES)}"
    )


def check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The landmarks as a (68, 2) float64 array; ValueError for any other shape."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (N_LANDMARKS, 2):
        raise ValueError(f"expected landmarks of shape (68, 2), got {lm.shape}")
    return lm


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking src onto dst.

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point
    patterns". Returns a (d+1, d+1) homogeneous matrix.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n, dim = src.shape
    mu_src = src.mean(axis=0)
    mu_dst = dst.mean(axis=0)
    src_c = src - mu_src
    dst_c = dst - mu_dst
    cov = dst_c.T @ src_c / n
    u, sing, vt = np.linalg.svd(cov)
    signs = np.ones(dim)
    if np.linalg.det(cov) < 0:
        signs[-1] = -1.0
    rank = np.linalg.matrix_rank(cov)
    out = np.eye(dim + 1)
    if rank == 0:
        return out * np.nan
    if rank == dim - 1 and np.linalg.det(u) * np.linalg.det(vt) <= 0:
        # Degenerate (collinear) input: choose the proper rotation.
        last = signs[-1]
        signs[-1] = -1.0
        rot = u @ np.diag(signs) @ vt
        signs[-1] = last
    else:
        rot = u @ np.diag(signs) @ vt
    scale = 1.0
    if estimate_scale:
        var_src = src_c.var(axis=0).sum()
        scale = float(sing @ signs) / var_src
    out[:dim, :dim] = scale * rot
    out[:dim, dim] = mu_dst - scale * (rot @ mu_src)
    return out


def transform_points(points: np.ndarray, mat: np.ndarray, invert: bool = False) -> np.ndarray:
    """Apply a (2,3) affine matrix to (N,2) points (or its inverse when ``invert``)."""
    mat = np.asarray(mat, dtype=np.float64)
    if invert:
        mat = cv2.invertAffineTransform(mat)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ mat[:, :2].T + mat[:, 2]


def estimate_averaged_yaw(landmarks: np.ndarray) -> float:
    """Yaw proxy from jaw-to-nose x distances (right side minus left side), in landmark units."""
    lm = check_landmarks(landmarks)
    left = ((lm[27, 0] - lm[0, 0]) + (lm[28, 0] - lm[1, 0]) + (lm[29, 0] - lm[2, 0])) / 3.0
    right = ((lm[16, 0] - lm[27, 0]) + (lm[15, 0] - lm[28, 0]) + (lm[14, 0] - lm[29, 0])) / 3.0
    return float(right - left)


def _affine_from_3_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Exact affine (2,3) float64 taking three src points onto three dst points."""
    a = np.hstack([src, np.ones((3, 1))])
    return np.linalg.solve(a, dst).T


def transform_matrix(
    landmarks: np.ndarray, output_size: int, face_type: str, scale: float = 1.0
) -> np.ndarray:
    """Affine (2,3) float64 that maps the landmarks' image onto an aligned ``face_type`` crop.

    The crop is ``output_size`` pixels square. ``face_type`` is a DFL name or a short code.
    """
    lm = check_landmarks(landmarks)
    face_type = face_type_from_code(face_type)
    if face_type not in FACE_TYPE_PADDING:
        raise ValueError(f"face type {face_type!r} has no crop")
    padding, remove_align = FACE_TYPE_PADDING[face_type]

    # Image space -> unit mean-shape square.
    to_unit = umeyama(lm[MEAN_SHAPE_INDICES], MEAN_SHAPE_2D, True)[:2]
    if not np.all(np.isfinite(to_unit)) or abs(np.linalg.det(to_unit[:, :2])) < 1e-12:
        raise ValueError("the landmarks are degenerate (all points coincide or are not finite)")
    unit_pts = np.array([(0, 0), (1, 0), (1, 1), (0, 1), (0.5, 0.5)], dtype=np.float64)
    g = transform_points(unit_pts, to_unit, invert=True)
    centre = g[4].copy()

    tb_diag = g[2] - g[0]
    tb_diag /= np.linalg.norm(tb_diag)
    bt_diag = g[1] - g[3]
    bt_diag /= np.linalg.norm(bt_diag)
    half_diag = np.linalg.norm(g[0] - g[2]) * (padding * math.sqrt(2.0) + 0.5) / scale

    up = g[0] - g[3]  # unit-square side pointing to the top of the face
    if face_type == WHOLE_FACE:
        centre += up * WHOLE_FACE_UP_SHIFT
    elif face_type == HEAD:
        yaw = estimate_averaged_yaw(transform_points(lm, to_unit))
        yaw *= abs(math.tanh(yaw * 2.0))  # damp near zero
        left = g[0] - g[1]
        centre -= left * (yaw / 2.0)
        centre += up * HEAD_UP_SHIFT

    if remove_align:
        # Axis-aligned square of the same area as the aligned one.
        half_side = half_diag / math.sqrt(2.0)
        src = np.array(
            [
                centre + np.array([-half_side, -half_side]),
                centre + np.array([half_side, -half_side]),
                centre + np.array([half_side, half_side]),
            ]
        )
    else:
        src = np.array(
            [
                centre - tb_diag * half_diag,
                centre + bt_diag * half_diag,
                centre + tb_diag * half_diag,
            ]
        )
    dst = np.array([(0, 0), (output_size, 0), (output_size, output_size)], dtype=np.float64)
    return _affine_from_3_points(src, dst)
