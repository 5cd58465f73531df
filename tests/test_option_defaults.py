"""Defaults derived as DFL derives them, and a new model's own random seed (docs/training.md,
"Seed"; docs/dfl-trainer.md §4.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dfl import backend

backend.select(None)

import keras  # noqa: E402

from dfl.common_options import COMMON_OPTIONS, NEW_SEED_BOUND  # noqa: E402
from dfl.models.quick96 import model as quick96  # noqa: E402
from dfl.models.saehd import model as saehd  # noqa: E402
from dfl.options import Option, resolve_options  # noqa: E402
from dfl.training.trainer import Trainer  # noqa: E402
from tests.helpers import make_setup  # noqa: E402

DFL_D_MASK_DIMS = 22  # Model_SAEHD: the default d_dims 64 // 3, rounded up to even


def test_d_mask_dims_default_comes_from_the_d_dims_offered_not_typed() -> None:
    offered: dict[str, Any] = {}

    def answer(option: Option, default: Any, resolved: Any) -> Any:
        offered[option.name] = default
        return 128 if option.name == "d_dims" else default

    options = resolve_options(saehd.SAEHD_OPTIONS, answer=answer).options
    assert options["d_dims"] == 128
    assert offered["d_mask_dims"] == options["d_mask_dims"] == DFL_D_MASK_DIMS
    headless = resolve_options(saehd.SAEHD_OPTIONS, overrides={"d_dims": 96}).options
    assert headless["d_mask_dims"] == DFL_D_MASK_DIMS


def test_a_new_model_draws_its_own_seed_and_keeps_it() -> None:
    seeds = {resolve_options(COMMON_OPTIONS).options["seed"] for _ in range(4)}
    assert len(seeds) > 1  # not 0 for everyone
    assert all(0 <= s < NEW_SEED_BOUND for s in seeds)
    assert resolve_options(COMMON_OPTIONS, overrides={"seed": "7"}).options["seed"] == 7
    stored = resolve_options(COMMON_OPTIONS).options
    resumed = resolve_options(COMMON_OPTIONS, stored=stored).options
    assert resumed["seed"] == stored["seed"]


def _start(folder: Path, seed: int) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """The first weights and the first batch a trainer with this seed starts from."""
    trainer = Trainer(make_setup(quick96.SPEC, folder, seed=seed))
    try:
        weights = [keras.ops.convert_to_numpy(w) for w in trainer.model.networks["encoder"].weights]
        return weights, trainer.producer.get(timeout=120).as_inputs()
    finally:
        trainer.close()


@pytest.mark.slow  # three tiny Quick96 trainers
def test_the_same_seed_starts_the_same_run(tmp_path: Path) -> None:
    weights_a, batch_a = _start(tmp_path / "a", 5)
    weights_b, batch_b = _start(tmp_path / "b", 5)
    weights_c, _ = _start(tmp_path / "c", 6)
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(a, b)
    for key in batch_a:
        np.testing.assert_array_equal(batch_a[key], batch_b[key])
    assert any(not np.array_equal(a, c) for a, c in zip(weights_a, weights_c, strict=True))
