"""The merge predictor (dfl.merge.predictor): saved tiny SAEHD df/liae, AMP and Quick96 models give
DFL's three outputs (swapped face, learned-prd, learned-dst) as the networks compute them, batched
with padding; the model's face type and resolution; AMP's morph factor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfl import backend

backend.select(None)
backend.import_keras()

from dfl.interop.deepfacelive.wiring import reference_outputs  # noqa: E402
from dfl.merge.predictor import PredictorError, load_predictor  # noqa: E402
from dfl.models.registry import load  # noqa: E402
from dfl.options import complete_options  # noqa: E402
from dfl.store.checkpoint_state import ModelState  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.training.trainer import weights_to_arrays  # noqa: E402

CASES = {  # name -> (model type, options over the tiny ones, morph factor, face type)
    "saehd-df": ("SAEHD", {"archi": "df-ud", "face_type": "f"}, None, "full_face"),
    "saehd-liae": ("SAEHD", {"archi": "liae-ud", "face_type": "head"}, None, "head"),
    "amp": ("AMP", {"face_type": "wf"}, 0.5, "whole_face"),
    "quick96": ("Quick96", {}, None, "full_face"),
}
TOLERANCE = 1e-5


def save_tiny(folder: Path, model_type: str, options: dict) -> dict:
    """Save a tiny model with fresh weights; returns its networks (the reference)."""
    spec = load(model_type)
    options = complete_options(spec.option_table(None), {**spec.tiny_options, **options})
    model = spec.build(options)
    arrays = {name: weights_to_arrays(net.weights) for name, net in model.networks.items()}
    state = ModelState(model_type=model_type, name="m", iteration=3, options=options)
    ModelStore(folder).save(state, arrays, summary_text="", loss_rows=0)
    return dict(model.networks)


@pytest.mark.parametrize("case", list(CASES))
def test_predictions_follow_dfls_contract(tmp_path: Path, case: str) -> None:
    model_type, options, morph, face_type = CASES[case]
    folder = tmp_path / f"m_{model_type}"
    networks = save_tiny(folder, model_type, options)
    predictor = load_predictor(folder, morph_factor=morph, batch_size=4)
    r = predictor.model_face.resolution
    assert predictor.model_face.face_type == face_type
    assert predictor.info.iteration == 3 and predictor.morph_factor == morph
    faces = np.random.default_rng(0).uniform(0, 1, (5, r, r, 3)).astype(np.float32)
    predictions = predictor.predict(faces)  # 5 faces: one full batch and one padded
    dst_mask, face, prd_mask = reference_outputs(networks, faces, (morph,))[0]
    assert len(predictions) == 5
    for i, p in enumerate(predictions):
        assert p.face.shape == (r, r, 3) and p.src_mask.shape == p.dst_mask.shape == (r, r)
        np.testing.assert_allclose(p.face, face[i], atol=TOLERANCE)
        np.testing.assert_allclose(p.src_mask, prd_mask[i, ..., 0], atol=TOLERANCE)
        np.testing.assert_allclose(p.dst_mask, dst_mask[i, ..., 0], atol=TOLERANCE)
        assert p.face.min() >= 0.0 and p.face.max() <= 1.0


def test_amp_morph_factor(tmp_path: Path) -> None:
    folder = tmp_path / "m_AMP"
    save_tiny(folder, "AMP", {})
    faces = np.random.default_rng(1).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    src = load_predictor(folder, morph_factor=1.0).predict(faces)
    dst = load_predictor(folder, morph_factor=0.0).predict(faces)
    assert not np.allclose(src[0].face, dst[0].face)  # another code, another face
    np.testing.assert_allclose(src[0].dst_mask, dst[0].dst_mask, atol=TOLERANCE)
    assert load_predictor(folder).morph_factor == 1.0  # DFL's default
    with pytest.raises(PredictorError, match="out of range"):
        load_predictor(folder, morph_factor=1.5)
    with pytest.raises(ValueError, match="expected faces of shape"):
        load_predictor(folder).predict(faces[:, :32])
