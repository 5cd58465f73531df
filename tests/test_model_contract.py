"""Every registered model honours the model contract (models/contract.py), at its tiny size:
it builds, trains a step, saves, resumes with the same weights and iteration, exports a .dfm
that onnxruntime runs like the Keras networks, and its weight names map to DFL's and back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfl import backend

backend.select(None)

import keras  # noqa: E402

from dfl.common_options import COMMON_OPTIONS  # noqa: E402
from dfl.interop.deepfacelab.mapping import (  # noqa: E402
    TF_SUFFIX,
    Problems,
    dfl_weight_name,
    map_network,
)
from dfl.interop.deepfacelive.dfm import export_saved_model  # noqa: E402
from dfl.interop.deepfacelive.wiring import LAYOUTS, MORPH_LAYOUTS  # noqa: E402
from dfl.models import registry  # noqa: E402
from dfl.models.contract import ModelSpec, Training  # noqa: E402
from dfl.models.loading import load_saved_model  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.training.benchmark import CASES  # noqa: E402
from dfl.training.trainer import Trainer  # noqa: E402
from tests.helpers import make_setup, tiny_options  # noqa: E402

MAX_TINY_WEIGHTS = 4_000_000  # SAEHD and AMP: the smallest sizes their option tables allow
EXPORT_TOLERANCE = 1e-4


def weights(networks: dict) -> dict[str, list[np.ndarray]]:
    return {
        n: [np.array(keras.ops.convert_to_numpy(w)) for w in m.weights] for n, m in networks.items()
    }


@pytest.fixture(scope="module", params=list(registry.MODELS))
def spec(request: pytest.FixtureRequest) -> ModelSpec:
    return registry.load(request.param)


def test_registry_lists_every_model_once() -> None:
    assert registry.DEFAULT_MODEL in registry.MODELS
    assert set(registry.DFL_MODELS) <= set(registry.MODELS)
    assert {case.model for case in CASES} <= set(registry.MODELS)
    for name in registry.MODELS:
        assert registry.canonical_name(name.upper()) == name
        assert registry.load(name).name == name
    with pytest.raises(registry.UnknownModelError, match="choose one of"):
        registry.load("nope")


def test_spec_fields(spec: ModelSpec) -> None:
    options = tiny_options(spec)
    table = spec.option_table(None)
    assert {o.name for o in COMMON_OPTIONS} <= {o.name for o in table}
    assert spec.batch_size(options, 1) >= 1
    src, dst = spec.augment_configs(options)
    assert src.resolution == dst.resolution
    assert spec.preview_history_every(options) >= 1
    if spec.export_layout is not None:
        assert spec.export_layout(options) in LAYOUTS


def test_build_train_save_resume_export(spec: ModelSpec, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    options = tiny_options(spec)
    folder = tmp_path / f"tiny_{spec.name}"
    trainer = Trainer(make_setup(spec, folder, options))
    try:
        assert isinstance(trainer.training, Training) and trainer.training.groups
        assert sum(m.count_params() for m in trainer.training.models) < MAX_TINY_WEIGHTS
        assert set(trainer.optimizers) and set(trainer.model.networks) <= set(trainer.networks)
        before = weights(trainer.networks)
        _ms, losses = trainer.train_one()
        assert trainer.iteration == 1 and all(np.isfinite(losses))
        trainer.save()
        trained = weights(trainer.networks)
        changed = [n for n in trainer.model.networks if not _same(before[n], trained[n])]
        assert changed, "a training step changed no network"
        assert trainer.preview_pages(fixed=True)
    finally:
        trainer.close()

    resumed = Trainer(make_setup(spec, folder, options, loaded=ModelStore(folder).load()))
    try:
        assert resumed.iteration == 1
        again = weights(resumed.networks)
        assert all(_same(trained[n], again[n]) for n in trained)
    finally:
        resumed.close()

    if spec.export_layout is None:
        return
    saved = load_saved_model(folder)
    assert (saved.model_type, saved.iteration) == (spec.name, 1)
    result = export_saved_model(saved, tmp_path / "tiny.dfm")  # onnxruntime vs Keras inside
    assert result.path.is_file() and result.verification.max_abs_diff < EXPORT_TOLERANCE
    assert result.verification.has_morph == (spec.export_layout(options) in MORPH_LAYOUTS)


def test_dfl_weight_names_map_back(spec: ModelSpec) -> None:
    """Each network's variables under their DFL names, as a DFL file holds them, map back to
    the same arrays in order (names unique, nothing missing or left over)."""
    if spec.name not in registry.DFL_MODELS:
        pytest.skip(f"DeepFaceLab has no {spec.name}")
    model = spec.build(tiny_options(spec))
    for network, net in model.networks.items():
        file = {
            dfl_weight_name(v.path, network, spec) + TF_SUFFIX: keras.ops.convert_to_numpy(v)
            for v in net.weights
        }
        assert len(file) == len(net.weights), f"{network}: two variables share a DFL name"
        problems = Problems()
        values = map_network(network, net.weights, file, Path(network), spec, problems)
        assert not problems, problems.lines
        assert _same(values, [keras.ops.convert_to_numpy(v) for v in net.weights])


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
