"""Checking a .dfm as DeepFaceLive does (docs/deepfacelive.md §3), then against Keras.

DeepFaceLive's loader: at least one input; the first input's name contains 'in_face' and its
shape[1:3] is the static (H, W); a second input's name must contain 'morph_value'; more than two
inputs are invalid. It then feeds the exact names `in_face:0` (and `morph_value:0` as
np.float32([value])) and reads the three outputs by position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfl.interop.deepfacelive import contract
from dfl.interop.deepfacelive.errors import VerificationError

VERIFY_SEED = 0
VERIFY_BATCHES = (1, 2)  # a single face, then a batch: N is dynamic
VERIFY_MORPHS = (0.0, 0.75, 1.0)  # AMP, on the single face: dst only, the default, src only
DEFAULT_MORPH = 0.75  # DeepFaceLive's default morph_value: the batch runs at it
FP32_TOLERANCE = 1e-4  # max abs difference to the Keras model
FP16_TOLERANCE = 2e-2  # conv weights rounded to float16
ORT_LOG_ERRORS_ONLY = 3


@dataclass(frozen=True)
class DfmInfo:
    """What DeepFaceLive learns from a .dfm's inputs."""

    resolution: int
    has_morph: bool


@dataclass(frozen=True)
class Verification:
    """The outcome of a successful check."""

    resolution: int
    has_morph: bool
    max_abs_diff: float
    tolerance: float
    batches: tuple[int, ...]
    morphs: tuple[float, ...]

    def describe(self) -> str:
        runs = f"N = {', '.join(str(n) for n in self.batches)}"
        if self.has_morph:
            runs += f"; morph_value = {', '.join(f'{m:g}' for m in self.morphs)}"
        return (
            f"onnxruntime opens it as DeepFaceLive does ({self.resolution}x{self.resolution}"
            f"{', with morph_value' if self.has_morph else ''}); outputs match the trained "
            f"model within {self.max_abs_diff:.1e} (limit {self.tolerance:.0e}; {runs})"
        )


def check_inputs(inputs: Sequence[Any]) -> DfmInfo:
    """DeepFaceLive's checks of a session's inputs (objects with .name and .shape)."""
    if not inputs:
        raise VerificationError("the model has no inputs")
    if len(inputs) > 2:
        raise VerificationError(f"the model has {len(inputs)} inputs; DeepFaceLive takes 1 or 2")
    first = inputs[0]
    if "in_face" not in first.name:
        raise VerificationError(f"the first input is {first.name!r}, which lacks 'in_face'")
    shape = list(first.shape)
    hw = shape[1:3]
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in hw) or hw[0] != hw[1]:
        raise VerificationError(
            f"input {first.name!r} has shape {shape}: DeepFaceLive needs [N, R, R, 3] with R static"
        )
    has_morph = len(inputs) == 2
    if has_morph and "morph_value" not in inputs[1].name:
        raise VerificationError(
            f"the second input is {inputs[1].name!r}, which lacks 'morph_value'"
        )
    return DfmInfo(resolution=int(hw[0]), has_morph=has_morph)


def open_session(path: Path | str) -> Any:
    """An onnxruntime CPU session on the file; VerificationError when it cannot be opened."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = ORT_LOG_ERRORS_ONLY
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise VerificationError(f"onnxruntime cannot open {path}: {exc}") from exc


def run(session: Any, info: DfmInfo, images: np.ndarray, morph: float) -> list[np.ndarray]:
    """Run as DeepFaceLive does: exact input names, the three outputs by position."""
    feed = {contract.IN_FACE: np.asarray(images, dtype=np.float32)}
    if info.has_morph:
        feed[contract.MORPH_VALUE] = np.float32([morph])
    try:
        outputs = session.run(None, feed)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise VerificationError(f"onnxruntime cannot run the model: {exc}") from exc
    n, res = len(images), info.resolution
    if len(outputs) != len(contract.OUTPUTS):
        raise VerificationError(f"the model has {len(outputs)} outputs, DeepFaceLive reads 3")
    expected = zip(contract.OUTPUTS, outputs, contract.OUTPUT_CHANNELS, strict=True)
    for name, out, channels in expected:
        if out.shape != (n, res, res, channels) or out.dtype != np.float32:
            raise VerificationError(
                f"output {name} is {out.dtype} {out.shape}, expected float32 "
                f"{(n, res, res, channels)}"
            )
    return outputs


def check_names(session: Any) -> None:
    """Our own contract beyond DeepFaceLive's checks: exact names and output order."""
    names = [o.name for o in session.get_outputs()]
    if names != list(contract.OUTPUTS):
        raise VerificationError(f"outputs are {names}, expected {list(contract.OUTPUTS)}")
    inputs = [i.name for i in session.get_inputs()]
    expected = [contract.IN_FACE] + ([contract.MORPH_VALUE] if len(inputs) == 2 else [])
    if inputs != expected:
        raise VerificationError(f"inputs are {inputs}, expected {expected}")


def verify_file(
    path: Path | str,
    networks: Mapping[str, Any],
    quantized: bool = False,
    layout: str | None = None,
) -> Verification:
    """Open the .dfm as DeepFaceLive does and compare it with the Keras networks (wired as
    `layout`, see wiring.layout_of) on fixed random faces; VerificationError says what failed."""
    from dfl.interop.deepfacelive.wiring import has_morph, reference_outputs, resolution_of

    session = open_session(path)
    info = check_inputs(session.get_inputs())
    check_names(session)
    if info.resolution != resolution_of(networks) or info.has_morph != has_morph(networks, layout):
        raise VerificationError(
            f"the file is a {info.resolution} px model{' with morph' if info.has_morph else ''}, "
            "not the one exported"
        )
    tolerance = FP16_TOLERANCE if quantized else FP32_TOLERANCE
    rng = np.random.default_rng(VERIFY_SEED)
    worst = 0.0
    for i, n in enumerate(VERIFY_BATCHES):
        images = rng.uniform(0.0, 1.0, (n, info.resolution, info.resolution, 3))
        images = images.astype(np.float32)
        morphs: tuple[float, ...] = (0.0,)
        if info.has_morph:
            morphs = VERIFY_MORPHS if i == 0 else (DEFAULT_MORPH,)
        wanted = reference_outputs(networks, images, morphs if info.has_morph else (None,), layout)
        for morph, want in zip(morphs, wanted, strict=True):
            got = run(session, info, images, morph)
            for name, a, b in zip(contract.OUTPUTS, got, want, strict=True):
                diff = float(np.max(np.abs(a - b)))
                if not diff < tolerance:  # NaN fails too
                    where = f"N = {n}" + (f", morph_value = {morph:g}" if info.has_morph else "")
                    raise VerificationError(
                        f"output {name} differs from the trained model by {diff:.3g} "
                        f"(limit {tolerance:g}; {where})"
                    )
                worst = max(worst, diff)
    return Verification(
        resolution=info.resolution,
        has_morph=info.has_morph,
        max_abs_diff=worst,
        tolerance=tolerance,
        batches=VERIFY_BATCHES,
        morphs=VERIFY_MORPHS if info.has_morph else (),
    )
