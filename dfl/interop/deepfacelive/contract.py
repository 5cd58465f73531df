"""DeepFaceLive's `.dfm` contract (docs/deepfacelive.md §1, §3): names, order, versions."""

from __future__ import annotations

IN_FACE = "in_face:0"  # [N, R, R, 3] NHWC float32 0..1 BGR; N dynamic, R static
MORPH_VALUE = "morph_value:0"  # AMP only: [1] float32, 0..1
OUT_FACE_MASK = "out_face_mask:0"  # [N, R, R, 1] mask of the destination face
OUT_CELEB_FACE = "out_celeb_face:0"  # [N, R, R, 3] the swapped face
OUT_CELEB_FACE_MASK = "out_celeb_face_mask:0"  # [N, R, R, 1] mask of the swapped face
OUTPUTS = (OUT_FACE_MASK, OUT_CELEB_FACE, OUT_CELEB_FACE_MASK)  # DeepFaceLive reads by position
OUTPUT_CHANNELS = (1, 3, 1)
BATCH_DIM = "N"  # the symbolic (dynamic) batch dimension

# DeepFaceLive pins onnxruntime 1.15.1: an opset from 12 to 17 and an IR version it reads.
OPSET = 13
IR_VERSION = 8
PRODUCER = "dfl"

DFM_SUFFIX = ".dfm"
