"""One model being trained: networks, step, losses, saving and previews; no threads, no UI."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from dfl import __version__
from dfl.data import facesetid
from dfl.data.batcher import MIB, BatchProducer
from dfl.data.faceset import FaceSample
from dfl.models.contract import ModelSpec
from dfl.nn import precision
from dfl.store.model_store import Loaded, ModelState, ModelStore
from dfl.store.optimizer_state import optimizer_to_arrays, restore_optimizer
from dfl.store.weights import (
    PREVIEW_SAMPLES_KEY,
    WeightsMismatchError,
    assign_arrays,
    check_fit,
    weights_to_arrays,
)
from dfl.training.preview import loss_graph
from dfl.training.summary import summary_text

LOSS_NAMES = ("src_loss", "dst_loss")
BATCH_TIMEOUT_S = 120.0  # a producer that delivers nothing for this long has failed
MAX_BAD_STEPS = 10  # consecutive non-finite losses before training stops (decision 15)
HISTORY_LAST_FILE = "_last.jpg"
DEFAULT_SAMPLE_CACHE_MB = 1024  # for options saved before sample_cache_mb existed


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what to do."""


@dataclass
class TrainingSetup:
    """Everything the trainer needs, decided before training starts (by the CLI or a test)."""

    spec: ModelSpec  # the model's contract (docs/design.md, "Models")
    name: str
    store: ModelStore
    options: dict[str, Any]
    device: str
    backend: str
    src: list[FaceSample]
    dst: list[FaceSample]
    loaded: Loaded | None = None  # a checkpoint to resume from
    pretrained: Loaded | None = None  # a new model starts from these network weights
    seed: int | None = None
    workers: int = 2
    device_lines: list[str] = field(default_factory=lambda: ["Using device: CPU"])


class Trainer:
    """Trains one model step by step and saves it; the runner decides when."""

    def __init__(self, setup: TrainingSetup) -> None:
        self.setup = setup
        self.notes: list[str] = []  # what the user should be told at the start (runner emits)
        self.iteration = 0
        self._reset_history = False
        # saved groups of networks that are off now (GAN, true face): written again unchanged
        self._kept_groups: dict[str, dict[str, np.ndarray]] = {}
        # per optimizer key: saved moments of weights it does not train now (frozen inter_AB)
        self._kept_slots: dict[str, dict[str, np.ndarray]] = {}
        self._build_networks(setup)
        if setup.loaded is not None:
            self._restore(setup.loaded)
        elif setup.pretrained is not None:
            for name, network in self.model.networks.items():
                assign_arrays(network.weights, setup.pretrained.arrays(name), name)

        self.step_fn = self._make_step()
        self._messages: list[str] = []  # for the user, said after the step that caused them
        self.producer = self._start_producer(setup)
        self.notes.extend(self.producer.notes)
        self.history = setup.store.open_loss_history(
            len(LOSS_NAMES),
            valid_rows=(
                setup.loaded.loss_rows
                if setup.loaded is not None and not self._reset_history
                else 0
            ),
        )
        self.notes.extend(self.history.notes)
        self.preview_inputs = self._initial_preview_inputs(setup.loaded)
        self.last_inputs: dict[str, np.ndarray] | None = None
        self._bad_steps = 0
        self.last_wait_ms = 0.0  # of the last iteration, spent waiting for a batch
        self._facesets = facesetid.identities(setup.src, setup.dst)  # saved with the state
        self.created_at = setup.loaded.state.created_at if setup.loaded is not None else _now_iso()

    def _build_networks(self, setup: TrainingSetup) -> None:
        """The model, its loss groups and optimizers, on every device (TF: mirrored variables)."""
        import keras

        from dfl.backend import data_parallel, device_count

        spec = setup.spec
        if setup.seed is not None:
            keras.utils.set_random_seed(setup.seed)
        n_devices = device_count(setup.device)  # the batch is split evenly across them
        self.batch_size = spec.batch_size(setup.options, n_devices)
        precision.apply(setup.options)  # bf16 mixed precision or float32, before building
        self._devices = data_parallel(n_devices)
        with self._devices:
            self.model = spec.build(setup.options)
            # the loss groups, each with its own optimizer (Quick96: one, saved as "optimizer")
            self.training = spec.make_training(setup.options, self.model)
            self.networks = {**self.model.networks, **self.training.networks}
            self.optimizers = dict(self.training.optimizers)
        if n_devices > 1:
            self.notes.append(
                f"Training on {n_devices} devices: the batch of {self.batch_size} is split "
                f"into {self.batch_size // n_devices} samples per device."
            )

    def _start_producer(self, setup: TrainingSetup) -> BatchProducer:
        src_cfg, dst_cfg = setup.spec.augment_configs(setup.options)
        seed = setup.seed if setup.seed is not None else int(time.time_ns() % 2**31)
        # A resumed run continues with fresh samples instead of replaying the first ones.
        seed += self.iteration
        cache_mb = int(setup.options.get("sample_cache_mb", DEFAULT_SAMPLE_CACHE_MB))
        return BatchProducer(
            setup.src,
            setup.dst,
            src_cfg,
            dst_cfg,
            self.batch_size,
            seed,
            workers=setup.workers,
            image_cache_bytes=cache_mb * MIB,
        )

    def _make_step(self) -> Any:
        from dfl.backend import make_step

        with self._devices:  # the step splits each batch across the devices
            return make_step(self.training.groups, self.training.models)

    def take_messages(self) -> list[str]:
        """What happened in the last steps that the user should be told (and forget it)."""
        messages, self._messages = self._messages, []
        return messages

    def _fall_back_to_float32(self) -> None:
        """Decision 5: a non-finite bf16 step turns bf16 off for this model (saved with it)."""
        precision.to_float32(list(self.training.models))
        self.setup.options[precision.OPTION] = False
        self.step_fn = self._make_step()
        self._messages.append(
            "A bf16 step gave NaN or infinite losses: bf16 is now off for this model and "
            "training goes on in float32."
        )

    # ----------------------------------------------------------------- restore
    def _restore(self, loaded: Loaded) -> None:
        """Load a checkpoint: networks by name, optimizers by weight name (docs/training.md,
        "Optimizer state across option changes"); every reset is said in the notes."""
        self.iteration = loaded.state.iteration
        fresh, reset, notes = self.setup.spec.fresh_on_resume(
            loaded.state.options, self.setup.options
        )
        self.notes.extend(notes)
        if reset:
            self.iteration = 0
            self._reset_history = True
        restarted = self._restore_networks(loaded, fresh)
        self._restore_optimizers(loaded, fresh | restarted)
        active = {*self.networks, *self.optimizers, PREVIEW_SAMPLES_KEY}
        # a discriminator switched off keeps its saved state for when it is switched back on
        self._kept_groups = {k: loaded.arrays(k) for k in loaded.keys if k not in active}

    def _restore_networks(self, loaded: Loaded, fresh: set[str]) -> set[str]:
        """Set the networks; returns the optimizer keys that start afresh with a discriminator
        whose saved shape no longer fits (its shape options changed)."""
        restarted: set[str] = set()
        for name, network in self.networks.items():
            if name in fresh:
                continue
            optional = name not in self.model.networks  # a discriminator
            if optional and not loaded.has(name):
                self.notes.append(f"{name} is new in this model: it starts afresh.")
                continue
            arrays = loaded.arrays(name)
            if optional:
                try:
                    check_fit(network.weights, arrays, name)
                except WeightsMismatchError:
                    owners = self._optimizers_of(network)
                    restarted |= owners
                    self.notes.append(
                        f"{name} was saved with other shape options: it starts afresh"
                        + (f" with {', '.join(sorted(owners))}." if owners else ".")
                    )
                    continue
            assign_arrays(network.weights, arrays, name)  # a mismatch: another model version
        return restarted

    def _optimizers_of(self, network: Any) -> set[str]:
        """The keys of the optimizers that train any of `network`'s weights."""
        ids = {id(v) for v in network.weights}
        return {
            key
            for key, optimizer in self.optimizers.items()
            if any(id(v) in ids for v in optimizer.trained_variables)
        }

    def _restore_optimizers(self, loaded: Loaded, fresh: set[str]) -> None:
        for key, optimizer in self.optimizers.items():
            if key in fresh:
                continue
            if not loaded.has(key):
                self.notes.append(f"{key} is new in this model: it starts afresh.")
                continue
            report = restore_optimizer(optimizer, loaded.arrays(key))
            self._kept_slots[key] = report.kept
            note = report.note(key)
            if note is not None:
                self.notes.append(note)

    def _initial_preview_inputs(self, loaded: Loaded | None) -> dict[str, np.ndarray]:
        # a restarted count (pretraining ended) redraws: the stored sample shows pretrain faces
        if loaded is not None and not self._reset_history and loaded.has(PREVIEW_SAMPLES_KEY):
            arrays = loaded.arrays(PREVIEW_SAMPLES_KEY)
            if all(a.shape[0] >= 1 for a in arrays.values()):
                return arrays
        batch = self.producer.get(timeout=BATCH_TIMEOUT_S)
        return batch.as_inputs()

    # -------------------------------------------------------------------- step
    def train_one(self) -> tuple[float, tuple[float, ...]]:
        """Train one iteration; returns (milliseconds, losses). Non-finite losses are skipped."""
        started = time.perf_counter()
        spec = self.setup.spec
        fresh = None
        if not spec.reuses_previous(self.iteration, self.last_inputs):
            fresh = self.producer.get(timeout=BATCH_TIMEOUT_S).as_inputs()
        self.last_wait_ms = (time.perf_counter() - started) * 1000.0  # waiting for samples
        inputs = spec.next_inputs(self.iteration, fresh, self.last_inputs)
        # inputs made on the host per step (AMP's morph mask); the others pass them on
        inputs = dict(spec.step_inputs(self.setup.options, inputs, self.iteration))
        result = self.step_fn(inputs)
        if precision.wants_bf16(self.setup.options) and not _all_finite(result):
            self._fall_back_to_float32()
            result = self.step_fn(inputs)  # the failed step changed nothing; do it again
        losses = tuple(float(result[name]) for name in LOSS_NAMES)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        # every loss the step returns is checked (each loss group's objective included)
        bad = [n for n, v in result.items() if not math.isfinite(float(v))]
        if bad:
            self._bad_steps += 1
            if self._bad_steps >= MAX_BAD_STEPS:
                names = ", ".join(bad)
                raise TrainingError(
                    f"{names} became NaN or infinite {MAX_BAD_STEPS} times in a row at iteration "
                    f"{self.iteration}; training stopped and the last good save is kept. "
                    "Try a lower learning rate or batch size, or restore a backup."
                )
            return elapsed_ms, losses
        self._bad_steps = 0
        self.last_inputs = inputs
        self.iteration += 1
        self.history.append(np.asarray([losses], dtype=np.float32))
        return elapsed_ms, losses

    @property
    def last_step_skipped(self) -> bool:
        """True when the last step's losses were not finite (the backends then change nothing)."""
        return self._bad_steps > 0

    # ------------------------------------------------------------------ saving
    def state(self) -> ModelState:
        return ModelState(
            model_type=self.setup.spec.name,
            name=self.setup.name,
            iteration=self.iteration,
            options=dict(self.setup.options),
            device=self.setup.device,
            backend=self.setup.backend,
            created_with=__version__,
            created_at=self.created_at,
            saved_at=_now_iso(),
            facesets=self._facesets,
        )

    def summary(self) -> str:
        return model_summary(
            self.setup.spec,
            self.setup.name,
            self.iteration,
            self.setup.options,
            self.setup.device_lines,
        )

    def save(
        self, progress: Callable[[int, int, str], None] | None = None
    ) -> tuple[str, tuple[float, ...]]:
        """Write a whole checkpoint; returns its path and the mean losses since the last save."""
        self.step_fn.sync()
        arrays = dict(self._kept_groups)  # networks that are off now, as they were saved
        arrays.update({name: weights_to_arrays(net.weights) for name, net in self.networks.items()})
        for key, optimizer in self.optimizers.items():
            arrays[key] = {**self._kept_slots.get(key, {}), **optimizer_to_arrays(optimizer)}
        arrays[PREVIEW_SAMPLES_KEY] = self.preview_inputs
        since_last_save = self.history.pending()  # the losses of the iterations since then
        means: tuple[float, ...] = ()  # none when nothing was trained since the last save
        if len(since_last_save):
            means = tuple(float(m) for m in since_last_save.mean(axis=0, dtype=np.float64))
        rows = self.history.flush()
        path = self.setup.store.save(
            self.state(), arrays, summary_text=self.summary(), loss_rows=rows, progress=progress
        )
        return str(path), means

    def backup(self, keep: int) -> str:
        return str(self.setup.store.backup(keep=keep))

    # ---------------------------------------------------------------- previews
    def preview_pages(self, fixed: bool = False) -> list[tuple[str, np.ndarray]]:
        """Preview pages from the latest training batch (or the fixed preview samples)."""
        self.step_fn.sync()
        inputs = self.preview_inputs if fixed or self.last_inputs is None else self.last_inputs
        # fixed: AMP shows one sample, a random one live and always the first in the history
        return self.setup.spec.preview(self.model, inputs, fixed=fixed)

    def draw_preview_sample(self) -> None:
        """Replace the fixed preview sample (the preview history's) with the next batch."""
        self.preview_inputs = self.producer.get(timeout=BATCH_TIMEOUT_S).as_inputs()

    def write_preview_history(self, frame: int) -> None:
        """Save the fixed-sample pages, loss graph labelled `Iter: <frame>` on top, as
        history/<page>/<frame:07d>.jpg (docs/dfl-trainer.md, "Preview history")."""
        history = self.loss_history()
        for name, page in self.preview_pages(fixed=True):
            graph = loss_graph(history, page.shape[1], frame)
            image = np.concatenate([graph, page], axis=0)
            folder = self.setup.store.history_dir / name
            folder.mkdir(parents=True, exist_ok=True)
            ok, encoded = cv2.imencode(".jpg", image)
            if not ok:
                raise TrainingError(f"could not encode the preview history image for {name}")
            # Plain writes: a history frame lost to a crash costs nothing.
            (folder / f"{frame:07d}.jpg").write_bytes(encoded.tobytes())
            (folder / HISTORY_LAST_FILE).write_bytes(encoded.tobytes())

    def loss_history(self) -> np.ndarray:
        return self.history.tail()

    def close(self) -> None:
        self.producer.close()


def model_summary(
    spec: ModelSpec,
    name: str,
    iteration: int,
    options: dict[str, Any],
    device_lines: list[str],
) -> str:
    """The summary box, in the model's own order and with its display overrides (SAEHD)."""
    shown = dict(spec.summary_options(options))
    overrides = spec.display_overrides(options)
    return summary_text(
        name, spec.name, iteration, shown, device_lines, display_overrides=overrides
    )


def _all_finite(result: dict[str, Any]) -> bool:
    return all(math.isfinite(float(value)) for value in result.values())


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
