"""The sample_cache_mb option bounds the memory of decoded faces the trainer keeps."""

from __future__ import annotations

from pathlib import Path

from dfl import backend

backend.select(None)

from dfl.data.batcher import MIB  # noqa: E402
from dfl.data.faceset import load_faceset  # noqa: E402
from dfl.models.saehd import model as saehd  # noqa: E402
from dfl.options import resolve_options  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.training.trainer import Trainer, TrainingSetup  # noqa: E402

FACESET = Path(__file__).parent / "data" / "dfl-faceset"
TINY = {"resolution": 64, "ae_dims": 32, "e_dims": 16, "d_dims": 16, "d_mask_dims": 16,
        "batch_size": 2, "face_type": "f"}  # fmt: skip


def trainer_with(folder: Path, **extra: object) -> Trainer:
    options = resolve_options(saehd.option_table(None), overrides={**TINY, **extra}).options
    return Trainer(
        TrainingSetup(
            spec=saehd.SPEC,
            name="tiny",
            store=ModelStore(folder),
            options=options,
            device="cpu",
            backend="tensorflow",
            src=load_faceset(FACESET / "src").samples,
            dst=load_faceset(FACESET / "dst").samples,
            seed=1,
            workers=1,
        )
    )


def test_the_cache_budget_comes_from_the_option(tmp_path: Path) -> None:
    trainer = trainer_with(tmp_path / "a", sample_cache_mb=3)
    try:
        assert trainer.producer.cache.max_bytes == 3 * MIB
        trainer.train_one()
        assert 0 < trainer.producer.cache.bytes <= 3 * MIB
    finally:
        trainer.close()
    trainer = trainer_with(tmp_path / "b", sample_cache_mb=0)
    try:
        trainer.train_one()
        assert trainer.producer.cache.bytes == 0  # every face decoded on use
    finally:
        trainer.close()
