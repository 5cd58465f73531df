"""A saved model loaded for merging: faces in, DFL's three predictor outputs out, batched.

DFL's predictor contract (models' `predictor_func`, docs/merge-run.md): the input is the
dst face cut from the frame, (R, R, 3) BGR float in [0, 1]; the outputs are the swapped face
(the src decoder on the dst code), the mask of that same pass ("learned-prd") and the dst
decoder's mask on the dst code ("learned-dst"), all clipped to [0, 1].

  df (Quick96, SAEHD df): code = inter(encoder(x)); face, prd mask = decoder_src(code);
      dst mask = decoder_dst(code) mask.
  liae: e = encoder(x); face, prd mask = decoder(concat(inter_AB(e), inter_AB(e)));
      dst mask = decoder(concat(inter_B(e), inter_AB(e))) mask.
  AMP: e = encoder(x); the swap code takes its first floor(C * morph) channels from
      inter_src(e) and the rest from inter_dst(e); face, prd mask = decoder(swap code);
      dst mask = decoder(inter_dst(e)) mask.

Keras must be imported (backend and device chosen) before load_predictor is called. The networks
are joined into one Keras model run with a fixed batch size (a new shape would recompile).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfl.data.landmarks import face_type_from_code
from dfl.errors import UserError
from dfl.merge.masked import ModelFace, Prediction

DEFAULT_BATCH_SIZE = 8  # faces per network call; a partial last batch is padded to this size
MORPH_RANGE = (0.0, 1.0)
DEFAULT_MORPH_FACTOR = 1.0  # DFL's default answer to "Morph factor"
MASK = 1  # a decoder returns [image, mask]
LAYOUTS: dict[str, tuple[str, ...]] = {
    "df": ("encoder", "inter", "decoder_src", "decoder_dst"),
    "liae": ("encoder", "inter_AB", "inter_B", "decoder"),
    "amp": ("encoder", "inter_src", "inter_dst", "decoder"),
}


class PredictorError(UserError):
    """The saved model cannot be used for merging; the message says why."""


@dataclass(frozen=True)
class ModelInfo:
    """Which saved model a predictor runs (for messages and the resume record)."""

    model_type: str
    name: str
    iteration: int
    folder: Path


def layout_of(networks: Mapping[str, Any]) -> str:
    names = set(networks)
    for layout, needed in LAYOUTS.items():
        if set(needed) <= names:
            return layout
    raise PredictorError(f"cannot merge with a model made of {', '.join(sorted(names))}")


def morph_channels(channels: int, morph_factor: float) -> np.ndarray:
    """True for the code channels taken from src: c < floor(C * morph), as DFL's AMP computes
    it (the count is cast to int in float32)."""
    count = np.floor(np.float32(channels) * np.float32(morph_factor))
    return np.arange(channels, dtype=np.float32) < count


def _outputs(network: Any, x: Any) -> list[Any]:
    out = network(x)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _join(networks: Mapping[str, Any], morph_factor: float | None) -> Any:
    """One Keras model: face batch -> [swapped face, learned-prd mask, learned-dst mask]."""
    import keras

    layout = layout_of(networks)
    inputs = keras.Input(tuple(networks["encoder"].inputs[0].shape[1:]))
    features = _outputs(networks["encoder"], inputs)[0]
    if layout == "df":
        code = _outputs(networks["inter"], features)[0]
        face, prd_mask = _outputs(networks["decoder_src"], code)[:2]
        dst_mask = _outputs(networks["decoder_dst"], code)[MASK]
    elif layout == "liae":
        ab = _outputs(networks["inter_AB"], features)[0]
        b = _outputs(networks["inter_B"], features)[0]
        concat = keras.layers.Concatenate(axis=-1)
        face, prd_mask = _outputs(networks["decoder"], concat([ab, ab]))[:2]
        dst_mask = _outputs(networks["decoder"], concat([b, ab]))[MASK]
    else:
        src = _outputs(networks["inter_src"], features)[0]
        dst = _outputs(networks["inter_dst"], features)[0]
        take = morph_channels(int(src.shape[-1]), morph_factor or 0.0)
        swap = keras.ops.where(keras.ops.convert_to_tensor(take), src, dst)
        face, prd_mask = _outputs(networks["decoder"], swap)[:2]
        dst_mask = _outputs(networks["decoder"], dst)[MASK]
    return keras.Model(inputs, [face, prd_mask, dst_mask], name="merge_predictor")


def model_face(model_type: str, options: Mapping[str, Any], resolution: int) -> ModelFace:
    """The model's resolution and face type (Quick96: always full_face)."""
    from dfl.models.registry import load as load_spec

    if "face_type" in options:
        return ModelFace(resolution=resolution, face_type=face_type_from_code(options["face_type"]))
    # Quick96 stores no face type option: its augmentation config names the fixed one.
    dst_config = load_spec(model_type).augment_configs(dict(options))[1]
    return ModelFace(resolution=resolution, face_type=dst_config.face_type)


class Predictor:
    """A trained model loaded for merging; runs faces batched on the chosen device."""

    def __init__(
        self,
        network: Any,
        model_face: ModelFace,
        info: ModelInfo,
        morph_factor: float | None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.network = network
        self.model_face = model_face
        self.info = info
        self.morph_factor = morph_factor
        self.batch_size = batch_size

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        import keras

        from dfl.nn import blocks

        with blocks.no_grad():
            outputs = self.network.predict_on_batch(batch)
        return [np.clip(np.asarray(keras.ops.convert_to_numpy(o)), 0.0, 1.0) for o in outputs]

    def predict(self, faces: np.ndarray) -> list[Prediction]:
        """(N, R, R, 3) float32 BGR [0, 1] faces -> N predictions, in order."""
        faces = np.asarray(faces, dtype=np.float32)
        r = self.model_face.resolution
        if faces.ndim != 4 or faces.shape[1:] != (r, r, 3):
            raise ValueError(f"expected faces of shape (N, {r}, {r}, 3), got {faces.shape}")
        results: list[Prediction] = []
        for start in range(0, len(faces), self.batch_size):
            chunk = faces[start : start + self.batch_size]
            n = len(chunk)
            if n < self.batch_size:  # keep one batch shape: no recompilation
                pad = np.zeros((self.batch_size - n, r, r, 3), np.float32)
                chunk = np.concatenate([chunk, pad])
            face, prd_mask, dst_mask = self._run(chunk)
            results.extend(
                Prediction(face=face[i], src_mask=prd_mask[i, ..., 0], dst_mask=dst_mask[i, ..., 0])
                for i in range(n)
            )
        return results


def check_morph_factor(morph_factor: float | None, model_type: str) -> float | None:
    """AMP: the morph factor in [0, 1] (default 1.0); other models: None (it means nothing)."""
    if model_type != "AMP":
        return None
    value = DEFAULT_MORPH_FACTOR if morph_factor is None else float(morph_factor)
    lo, hi = MORPH_RANGE
    if not lo <= value <= hi:
        raise PredictorError(f"morph factor {value} is out of range {lo} .. {hi}")
    return value


def load_predictor(
    model_folder: Path,
    *,
    morph_factor: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Predictor:
    """Load a saved model's newest whole checkpoint for merging."""
    from dfl.models.loading import SavedModelError, load_saved_model

    try:
        saved = load_saved_model(Path(model_folder))
    except SavedModelError as exc:
        raise PredictorError(str(exc)) from None
    morph = check_morph_factor(morph_factor, saved.model_type)
    network = _join(saved.networks, morph)
    resolution = int(network.inputs[0].shape[1])
    from dfl.store.model_store import ModelStore

    # the state again, for the options (the weights were checked by load_saved_model)
    options = ModelStore(saved.folder).load(verify_checksums=False).state.options
    face = model_face(saved.model_type, options, resolution)
    info = ModelInfo(saved.model_type, saved.name, saved.iteration, saved.folder)
    return Predictor(network, face, info, morph, max(1, int(batch_size)))
