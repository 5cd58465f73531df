"""The checks that tests/backends.py runs on a Keras backend, each by name: in a child process
with $KERAS_BACKEND set, or in the test process itself for the backend already loaded.

A plan is a list of [check name, [arguments]]; run_plan runs it here and returns each check's
result (JSON-able). A check that fails raises (the child exits non-zero with the traceback).

A case file (save_case) holds `model` (a registered model name), `options` (JSON), the
weights of every network of the model's Training as `w_<network>_<weight>` in get_weights()
order and the batches as `b_<step>_<input name>`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dfl import backend

backend.select(None)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from dfl.backend import make_step  # noqa: E402
from dfl.backend.step import LossGroup  # noqa: E402
from dfl.models import registry  # noqa: E402
from dfl.models.amp import model as amp  # noqa: E402
from dfl.models.quick96 import model as quick96  # noqa: E402
from dfl.nn import blocks, losses  # noqa: E402
from dfl.nn.optimizers import RMSprop  # noqa: E402
from tests.helpers import make_setup, to_np  # noqa: E402

SEED = 0
DFL_FACES = 2  # fixed random faces per side fed to imported DFL models
NO_LR_DROPOUT = 1.0  # RMSprop keeps every update: random masks differ between backends


# ----------------------------------------------------------------------------- case files
def save_case(folder: Path, model: str, options: dict, networks: list, batches: list) -> Path:
    """Write a case file for the `train` check (the test process's side)."""
    arrays = {
        f"w_{mi:02d}_{wi:04d}": w
        for mi, net in enumerate(networks)
        for wi, w in enumerate(net.get_weights())
    }
    for s, batch in enumerate(batches):
        arrays.update({f"b_{s}_{k}": v for k, v in batch.items()})
    case = folder / f"{model}.npz"
    np.savez(case, model=np.array(model), options=np.array(json.dumps(options)), **arrays)
    return case


def _load_case(path: str) -> tuple[str, dict, dict, list[dict]]:
    with np.load(path, allow_pickle=False) as data:
        weights = {k: data[k] for k in data.files if k.startswith("w_")}
        steps = sorted({int(k.split("_")[1]) for k in data.files if k.startswith("b_")})
        batches = [
            {k.split("_", 2)[2]: data[k] for k in data.files if k.startswith(f"b_{s}_")}
            for s in steps
        ]
        return str(data["model"]), json.loads(str(data["options"])), weights, batches


def _networks(name: str, options: dict) -> tuple[list[Any], Any]:
    """The networks of the model's Training (in case-file order) and its step. Quick96 has no
    lr_dropout option; a case's "lr_dropout": "n" turns its fixed dropout off."""
    spec = registry.load(name)
    model = spec.build(options)
    if name == quick96.NAME and options.get("lr_dropout") == "n":
        optimizer = RMSprop(learning_rate=quick96.LR, lr_dropout=NO_LR_DROPOUT)
        return [model], backend.make_model_step(model, quick96.compute_losses, optimizer)
    training = spec.make_training(options, model)
    return list(training.models), make_step(training.groups, training.models)


# ---------------------------------------------------------------------------------- checks
def train(path: str, counts: str = "1", evaluate: bool = False) -> list[dict]:
    """The case's model from its weights, built and trained on each number of devices in
    `counts` (1: no data_parallel): the losses of every step (the last batch once more after a
    sync and, for Quick96 and SAEHD, an eager preview), with `evaluate` also those of the first
    batch before and after (one device only); a BackendError as {"error": message} (torch
    refuses several devices)."""
    name, options, weights, batches = _load_case(path)
    runs = []
    for n in map(int, counts.split(",")):
        keras.utils.set_random_seed(SEED)
        try:
            with backend.data_parallel(n):
                networks, step = _networks(name, options)
        except backend.BackendError as exc:
            runs.append({"error": str(exc)})
            continue
        for mi, net in enumerate(networks):
            net.set_weights([weights[k] for k in sorted(weights) if k.startswith(f"w_{mi:02d}_")])
        step.refresh()
        run: dict[str, Any] = {"backend": keras.backend.backend()}
        run["devices"] = step.devices  # what the step really runs on
        if evaluate and n == 1:
            run["before"] = step.evaluate(batches[0])
        run["losses"] = [step(batch) for batch in batches]
        step.sync()  # as a save or preview does; then an eager forward pass and one more step
        if name != amp.NAME:  # Quick96's and SAEHD's autoencoder comes first
            networks[0].predict_preview(batches[0]["target_src"], batches[0]["target_dst"])
        step.refresh()
        run["losses"].append(step(batches[-1]))
        if evaluate and n == 1:
            run["after"] = step.evaluate(batches[0])
        runs.append(run)
    return runs


def sgd_update(path: str, counts: str = "1") -> list[dict]:
    """The case's Quick96 with plain SGD at learning rate 1 (a weight's change is minus its
    gradient), one step on its first batch on each number of devices in `counts`: the change of
    every weight goes to `<case>.update<n>.npz`."""
    _, options, weights, batches = _load_case(path)
    runs = []
    for n in map(int, counts.split(",")):
        keras.utils.set_random_seed(SEED)
        with backend.data_parallel(n):
            model = quick96.build(options)
            optimizer = keras.optimizers.SGD(learning_rate=1.0)
            step = backend.make_model_step(model, quick96.compute_losses, optimizer)
        model.set_weights([weights[k] for k in sorted(weights)])
        step.refresh()
        before = [w.copy() for w in model.get_weights()]
        step(batches[0])
        step.sync()
        changes = [a - b for a, b in zip(model.get_weights(), before, strict=True)]
        out = Path(path).with_suffix(f".update{n}.npz")
        np.savez(out, *changes)
        runs.append({"devices": step.devices, "update": str(out)})
    return runs


def dfl_outputs(work: str, *dfl_folders: str) -> dict:
    """Import each DFL model folder into WORK/<backend>/ and write its outputs on fixed faces
    to WORK/<backend>/<folder name>.npz: SAEHD's predict_preview (ss, ssm, dd, ddm, sd, sdm),
    AMP's swap image and mask at morph values 0 and 1."""
    from dfl.interop.deepfacelab import find_dfl_models
    from dfl.interop.deepfacelab.importer import import_dfl_model
    from dfl.store.model_store import ModelStore

    out = Path(work) / keras.backend.backend()
    out.mkdir()
    for folder in map(Path, dfl_folders):
        (files,) = find_dfl_models(folder)
        report = import_dfl_model(files, out)
        loaded = ModelStore(report.folder).load()
        options = loaded.state.options
        model = registry.load(report.model_type).build(options)
        for name, network in model.networks.items():
            arrays = loaded.arrays(name)
            network.set_weights([arrays[key] for key in sorted(arrays)])
        res = int(options["resolution"])
        rng = np.random.default_rng(SEED)
        src, dst = (rng.random((DFL_FACES, res, res, 3), dtype=np.float32) for _ in range(2))
        if report.model_type == "AMP":
            results = {}
            for value in (0.0, 1.0):
                results[f"swap{value}"], results[f"swapm{value}"] = model.swap(dst, value)
        else:
            results = model.predict_preview(src, dst)
        np.savez(out / f"{folder.name}.npz", **{k: to_np(v) for k, v in results.items()})
    return {"backend": keras.backend.backend(), "folder": str(out)}


def trainer_devices(folder: str) -> dict:
    """The Trainer on every device $DFL_CPU_DEVICES made (tiny Quick96): three steps, save,
    preview, resume and one more step."""
    from dfl.store.model_store import ModelStore
    from dfl.training.trainer import Trainer

    setup = make_setup(quick96.SPEC, Path(folder))
    trainer = Trainer(setup)
    losses_ = [trainer.train_one()[1] for _ in range(3)]
    trainer.save()
    pages = trainer.preview_pages()
    trainer.close()
    setup.loaded = ModelStore(setup.store.folder).load()
    resumed = Trainer(setup)
    losses_.append(resumed.train_one()[1])
    resumed.close()
    return {
        "devices": trainer.step_fn.devices,
        "batch": trainer.batch_size,
        "notes": trainer.notes,
        "pages": len(pages),
        "losses": [[float(v) for v in step] for step in losses_],
        "iteration": resumed.iteration,
    }


# ------------------------------------------------- loss groups (dfl.backend.make_step) on toys
def _values(weights: list) -> list[np.ndarray]:
    return [np.array(to_np(v)) for v in weights]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def toy_groups() -> tuple[Any, Any, Any, Any, list[LossGroup], dict[str, np.ndarray]]:
    """A 4->4 dense generator and a 4->1 dense discriminator, with their two loss groups."""
    keras.utils.set_random_seed(SEED)
    gen = keras.Sequential([keras.Input((4,)), blocks.dense(4, "g1")], name="gen")
    dis = keras.Sequential([keras.Input((4,)), blocks.dense(1, "d1")], name="dis")

    def g_losses(inputs: dict, training: bool) -> dict:
        fake = gen(inputs["x"], training=training)
        rec = ops.mean(ops.square(fake - inputs["real"]), axis=1)
        per = rec + 0.5 * losses.generator_adversarial_loss(dis(fake))
        return {"loss": ops.sum(per) * inputs["scale_g"][0], "rec": ops.mean(rec)}

    def d_losses(inputs: dict, training: bool) -> dict:
        fake = ops.stop_gradient(gen(inputs["x"], training=training))
        per = losses.discriminator_loss(dis(inputs["real"]), dis(fake))
        return {"loss": ops.sum(per) * inputs["scale_d"][0], "d_mean": ops.mean(per)}

    g_opt, d_opt = RMSprop(learning_rate=0.01), RMSprop(learning_rate=0.01)
    groups = [
        LossGroup("generator", gen.trainable_variables, g_opt, g_losses),
        LossGroup("discriminator", dis.trainable_variables, d_opt, d_losses),
    ]
    rng = np.random.default_rng(SEED)
    inputs = {
        "x": rng.standard_normal((3, 4)).astype(np.float32),
        "real": rng.standard_normal((3, 4)).astype(np.float32),
        "scale_g": np.ones(1, np.float32),
        "scale_d": np.ones(1, np.float32),
    }
    return gen, dis, g_opt, d_opt, groups, inputs


def _iterations(optimizer: Any) -> int:
    return int(to_np(optimizer.iterations))


def groups_touch_only_their_own_weights() -> None:
    gen, dis, g_opt, d_opt, groups, inputs = toy_groups()
    step = make_step(groups, models=[gen, dis])
    g0, d0 = _values(gen.weights), _values(dis.weights)
    out = step(inputs, groups=("discriminator",))
    assert set(out) == {"discriminator_loss", "d_mean"}
    step.sync()
    assert _same(_values(gen.weights), g0) and not _same(_values(dis.weights), d0)
    assert (_iterations(g_opt), _iterations(d_opt)) == (0, 1)
    d1 = _values(dis.weights)
    out = step(inputs, groups=("generator",))
    assert set(out) == {"generator_loss", "rec"}
    step.sync()
    assert _same(_values(dis.weights), d1) and not _same(_values(gen.weights), g0)
    assert _iterations(g_opt) == 1


def groups_run_in_order_on_updated_weights() -> None:
    gen, dis, _, _, groups, inputs = toy_groups()
    step = make_step(groups, models=[gen, dis])
    step.sync()
    d0 = _values(dis.weights)
    out = step(inputs)
    assert set(out) == {"generator_loss", "rec", "discriminator_loss", "d_mean"}
    step.sync()
    # the D pass saw the generator after its update and the discriminator before its own
    updated_d = _values(dis.weights)
    for variable, value in zip(dis.weights, d0, strict=True):
        variable.assign(value)
    step.refresh()
    again = step.evaluate(inputs, groups=("discriminator",))
    np.testing.assert_allclose(again["discriminator_loss"], out["discriminator_loss"], rtol=1e-5)
    assert not _same(updated_d, d0)


def a_non_finite_group_changes_nothing() -> None:
    gen, dis, g_opt, d_opt, groups, inputs = toy_groups()
    step = make_step(groups, models=[gen, dis])
    step.sync()
    g0, d0, g_opt_0 = _values(gen.weights), _values(dis.weights), _values(g_opt.variables)
    out = step({**inputs, "scale_g": np.full(1, np.nan, np.float32)})
    assert np.isnan(out["generator_loss"]) and np.isfinite(out["discriminator_loss"])
    step.sync()
    assert _same(_values(gen.weights), g0) and _same(_values(g_opt.variables), g_opt_0)
    assert not _same(_values(dis.weights), d0)  # the other group still trained
    assert _iterations(d_opt) == 1


LOSS_GROUP_CHECKS = (
    groups_touch_only_their_own_weights,
    groups_run_in_order_on_updated_weights,
    a_non_finite_group_changes_nothing,
)


def loss_groups() -> dict:
    """Every toy loss-group check (each asserts); the names of those that passed."""
    for check in LOSS_GROUP_CHECKS:
        check()
    return {"backend": keras.backend.backend(), "passed": [c.__name__ for c in LOSS_GROUP_CHECKS]}


CHECKS: dict[str, Callable[..., Any]] = {
    "train": train,
    "dfl_outputs": dfl_outputs,
    "trainer_devices": trainer_devices,
    "sgd_update": sgd_update,
    "loss_groups": loss_groups,
}
Plan = list[tuple[str, list[Any]]]  # [check name, its arguments (JSON values)]


def run_plan(plan: Plan) -> list[Any]:
    """Every check of the plan in this process, in order: their results."""
    return [CHECKS[name](*args) for name, args in plan]
