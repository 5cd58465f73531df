"""`dfl bench`: how fast training runs, measured case by case (issue 5); no UI.

Each case trains a real model (the Trainer, data pipeline included) on demo facesets
and reports one dict: ms per full iteration in steady state, ms of the training step alone on a
fixed batch, the share of the iteration spent waiting for samples, the samples/s the data
pipeline makes on its own, the estimated training FLOPs and the achieved TFLOP/s, and the peak
memory. A sample is one src+dst pair (one row of the batch).
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLOPS_PER_MAC = 2
TRAIN_FLOPS_PER_FORWARD = 3  # forward + backward ≈ 3 forward passes (the reference's convention)
FULL_FACES_PER_SIDE = 64  # DFL's CPU runs used 64 src + 64 dst faces
QUICK_FACES_PER_SIDE = 16
DEMO_RESOLUTION = 256  # px, enough for every case's crop
KIB = 1024

# Options the reference step (docs/benchmarks.md §2) trains with: RMSprop, no GAN or style.
REFERENCE_LIKE = {"adabelief": "n"}


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # a name of dfl.models.registry.MODELS
    options: dict[str, str]  # overrides, as `--opt name=value` would give them
    # `--quick` runs the case with the model's ModelSpec.tiny_options on top of these


CASES: tuple[Case, ...] = (
    Case("quick96", "Quick96", {}),
    Case(
        "saehd-df-ud-128-bs16",
        "SAEHD",
        {"archi": "df-ud", "resolution": "128", "batch_size": "16", **REFERENCE_LIKE},
    ),
    Case(
        "saehd-df-ud-256-bs8",
        "SAEHD",
        {"archi": "df-ud", "resolution": "256", "batch_size": "8", **REFERENCE_LIKE},
    ),
    Case(
        "saehd-df-ud-256-bs8-adabelief",
        "SAEHD",
        {"archi": "df-ud", "resolution": "256", "batch_size": "8"},
    ),
    Case(
        "saehd-liae-ud-256-bs8",
        "SAEHD",
        {"archi": "liae-ud", "resolution": "256", "batch_size": "8", **REFERENCE_LIKE},
    ),
    Case("amp-224-bs8", "AMP", {"resolution": "224", "batch_size": "8"}),
)


@dataclass(frozen=True)
class Settings:
    quick: bool = False
    backend: str = "tensorflow"
    device: str = "cpu"
    warmup: int = 5  # iterations before measuring (compilation, caches)
    iterations: int = 30  # measured iterations
    step_repeats: int = 10  # runs of the step alone
    pipeline_batches: int = 20  # batches the pipeline alone makes
    workers: int = 2
    seed: int = 0
    precision: str = "fp32"  # or "bf16" (mixed precision, decision 5)

    @classmethod
    def for_quick(cls, **kwargs: Any) -> Settings:
        quick = {"warmup": 2, "iterations": 3, "step_repeats": 3, "pipeline_batches": 6}
        return cls(quick=True, **{**quick, **kwargs})


@dataclass
class Result:
    case: str
    model: str
    options: dict[str, Any]
    backend: str
    precision: str
    device: str
    batch: int
    resolution: int
    ms_per_iter: float
    ms_step: float
    data_wait_share: float
    pipeline_samples_per_s: float
    step_samples_per_s: float
    tflop_per_iter: float
    achieved_tflops: float
    peak_memory_mb: float
    first_iteration_s: float
    iterations: int
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ------------------------------------------------------------------------------ FLOPs
def forward_macs(network: Any) -> int:
    """Multiply-accumulates of one forward pass of one sample through a built network."""
    import keras

    from dfl.nn import blocks
    from dfl.nn.keras_internals import built_input_shape, sublayers

    macs = 0
    for layer in sublayers(network):
        if isinstance(layer, blocks.Conv2D):
            k, _, cin, cout = layer.kernel.shape
            height, width = built_input_shape(layer)[1:3]
            out_h = (height + 2 * layer.pad - k) // layer.strides + 1
            out_w = (width + 2 * layer.pad - k) // layer.strides + 1
            macs += out_h * out_w * k * k * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            fan_in, units = layer.kernel.shape
            macs += fan_in * units
    return int(macs)


def train_flops(networks: dict[str, Any], passes: Mapping[str, int], batch: int) -> float:
    """Estimated FLOPs of one generator training iteration (forward + backward), from the
    forward passes per src+dst pair of each network (ModelSpec.forward_passes)."""
    missing = sorted(set(passes) - set(networks))
    if missing:
        raise ValueError(f"the forward-pass table names networks the model lacks: {missing}")
    macs = sum(count * forward_macs(networks[name]) for name, count in passes.items())
    return float(FLOPS_PER_MAC * TRAIN_FLOPS_PER_FORWARD * batch * macs)


# ----------------------------------------------------------------------------- memory
def peak_memory_bytes(backend_name: str, device: str) -> int:
    """The training device's peak memory: the GPU's when training on one, else the process's."""
    if device != "cpu":
        try:
            if backend_name == "jax":
                import jax

                stats = jax.devices()[0].memory_stats() or {}
                if "peak_bytes_in_use" in stats:
                    return int(stats["peak_bytes_in_use"])
            elif backend_name == "tensorflow":
                import tensorflow as tf

                return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
            elif backend_name == "torch":
                import torch

                if torch.cuda.is_available():
                    return int(torch.cuda.max_memory_allocated())
        except (ImportError, RuntimeError, ValueError, KeyError):
            pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB  # Linux reports KiB


# -------------------------------------------------------------------------------- runs
def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _pipeline_rate(trainer: Any, batches: int, workers: int) -> float:
    """Samples/s of a fresh data pipeline like the trainer's, with nothing else running."""
    from dfl.data.batcher import BatchProducer

    src_cfg, dst_cfg = trainer.setup.spec.augment_configs(trainer.setup.options)
    producer = BatchProducer(
        trainer.setup.src,
        trainer.setup.dst,
        src_cfg,
        dst_cfg,
        trainer.batch_size,
        seed=1,
        workers=workers,
    )
    try:
        producer.get(timeout=120.0)  # the first batch pays for thread start-up
        started = time.perf_counter()
        for _ in range(batches):
            producer.get(timeout=120.0)
        return batches * trainer.batch_size / (time.perf_counter() - started)
    finally:
        producer.close()


def _options_for(case: Case, quick: bool, precision: str = "fp32") -> dict[str, Any]:
    """The case's resolved options; quick: the model's tiny_options on top."""
    from dfl.models.registry import load
    from dfl.options import resolve_options

    spec = load(case.model)
    tiny = spec.tiny_options if quick else {}
    overrides = {k: v for k, v in case.options.items() if k not in tiny}
    overrides["bf16"] = precision == "bf16"
    options = resolve_options(spec.option_table(None), overrides=overrides).options
    return {**options, **tiny}


def run_case(case: Case, settings: Settings, faces: tuple[list, list], workdir: Path) -> Result:
    """Train `case` and measure it; `faces` are the (src, dst) samples to train on."""
    from dfl.models.registry import load
    from dfl.nn import precision
    from dfl.store.model_store import ModelStore
    from dfl.training.trainer import Trainer, TrainingSetup

    started = time.perf_counter()
    spec = load(case.model)
    options = _options_for(case, settings.quick, settings.precision)
    setup = TrainingSetup(
        spec=spec,
        name=case.name,
        store=ModelStore(workdir / f"{case.name}_{spec.name}"),
        options=options,
        device=settings.device,
        backend=settings.backend,
        src=faces[0],
        dst=faces[1],
        seed=settings.seed,
        workers=settings.workers,
    )
    trainer = Trainer(setup)
    try:
        trainer.train_one()
        first_iteration_s = time.perf_counter() - started
        ms, waits = _timed_iterations(trainer, settings)
        inputs = trainer.last_inputs
        step_ms = _step_times(trainer, inputs, settings.step_repeats)
        pipeline = _pipeline_rate(trainer, settings.pipeline_batches, settings.workers)
        batch = trainer.batch_size
        flops = float("nan")
        if spec.forward_passes is not None:
            flops = train_flops(trainer.model.networks, spec.forward_passes(options), batch)
        ms_iter, ms_step = _median(ms), _median(step_ms)
        resolution = int(inputs["target_src"].shape[1])
        return Result(
            case=case.name,
            model=spec.name,
            options={**case.options, **(spec.tiny_options if settings.quick else {})},
            backend=settings.backend,
            precision=precision.label(trainer.setup.options),  # bf16 may have fallen back
            device=settings.device,
            batch=batch,
            resolution=resolution,
            ms_per_iter=round(ms_iter, 2),
            ms_step=round(ms_step, 2),
            data_wait_share=round(sum(waits) / sum(ms), 4) if ms else float("nan"),
            pipeline_samples_per_s=round(pipeline, 2),
            step_samples_per_s=round(batch * 1000.0 / ms_step, 2),
            tflop_per_iter=round(flops / 1e12, 4),
            achieved_tflops=round(flops / (ms_iter / 1000.0) / 1e12, 4),
            peak_memory_mb=round(peak_memory_bytes(settings.backend, settings.device) / 2**20, 1),
            first_iteration_s=round(first_iteration_s, 2),
            iterations=settings.iterations,
        )
    finally:
        trainer.close()


def _timed_iterations(trainer: Any, settings: Settings) -> tuple[list[float], list[float]]:
    """After the rest of the warm-up, (ms per iteration, ms waiting for data) of each timed one."""
    for _ in range(max(0, settings.warmup - 1)):
        trainer.train_one()
    ms: list[float] = []
    waits: list[float] = []
    for _ in range(settings.iterations):
        elapsed, _losses = trainer.train_one()
        ms.append(elapsed)
        waits.append(trainer.last_wait_ms)
    return ms, waits


def _step_times(trainer: Any, inputs: dict, repeats: int) -> list[float]:
    """ms of the training step alone on the same inputs, ``repeats`` times."""
    step_ms: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = trainer.step_fn(inputs)
        float(result["src_loss"])  # waits for it
        step_ms.append((time.perf_counter() - t0) * 1000.0)
    return step_ms


def select_cases(names: list[str] | None) -> list[Case]:
    """The cases named (all when None); an unknown name raises ValueError listing the known."""
    if not names:
        return list(CASES)
    known = {case.name: case for case in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown case {', '.join(unknown)}: choose from {', '.join(known)}")
    return [known[n] for n in names]


def run(
    cases: list[Case],
    settings: Settings,
    progress: Callable[[str], None] = lambda message: None,
) -> Iterator[Result]:
    """Make demo facesets once, then run each case in turn, yielding its result."""
    from dfl import backend

    if "keras" not in sys.modules:
        backend.use_device(settings.device)
    backend.import_keras(settings.backend)
    from dfl.data.faceset import load_faceset
    from dfl.demo.facesets import make_demo_facesets

    count = QUICK_FACES_PER_SIDE if settings.quick else FULL_FACES_PER_SIDE
    with tempfile.TemporaryDirectory(prefix="dfl-bench-") as tmp:
        workspace = Path(tmp) / "workspace"
        progress(f"drawing {count}+{count} demo faces")
        src_dir, dst_dir = make_demo_facesets(
            workspace, count=count, resolution=DEMO_RESOLUTION, seed=settings.seed
        )
        faces = (load_faceset(src_dir).samples, load_faceset(dst_dir).samples)
        for case in cases:
            progress(f"{case.name}: training")
            yield run_case(case, settings, faces, workspace / "model")
