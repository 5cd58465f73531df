"""Child process of test_multidevice: a few training steps on 1 or several virtual CPU devices.

usage: KERAS_BACKEND=jax DFL_CPU_DEVICES=2 python tests/multidevice_check.py 1,2 case.npz...
$DFL_CPU_DEVICES splits the CPU before the framework starts; every case runs on each listed
number of devices (1: no data_parallel, the usual one-device step). Each .npz holds `model`
(quick96 or saehd), `options` (JSON), the weights of every network as
`w_<network index>_<weight index>` in get_weights() order and the batches as
`b_<step>_<input name>` (the last batch is trained twice, around a sync). The networks,
optimizers and step are built inside dfl.backend.data_parallel(n), as the trainer does. Prints
one JSON line per run (cases in order, each on every count): the devices the step runs on and
the losses of each step; a BackendError as {"error": message} (torch refuses several devices).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dfl import backend

CHILD_TIMEOUT_S = 300
SGD_SUFFIX = "_sgd"  # a case "<model>_sgd" writes the weights' change after one step


def _networks(module: str, options: dict) -> tuple[list[Any], Any]:
    """The networks (in weight order) and the step of `module` with these options."""
    import importlib

    import keras

    spec = importlib.import_module(f"dfl.models.{module.removesuffix(SGD_SUFFIX)}.model")
    if module.endswith(SGD_SUFFIX):  # plain SGD at lr 1: a weight's change is minus its gradient
        model = spec.build(options, spec.TINY)
        optimizer = keras.optimizers.SGD(learning_rate=1.0)
        return [model], backend.make_model_step(model, spec.compute_losses, optimizer)
    if module == "quick96":
        model = spec.build(options, spec.TINY)
        step = backend.make_model_step(model, spec.compute_losses, spec.make_optimizer(options))
        return [model], step
    model = spec.build(options)
    training = spec.make_training(options, model)
    return list(training.models), backend.make_step(training.groups, training.models)


def _load(path: str) -> tuple[str, dict, dict, list[dict]]:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        weights = {k: data[k] for k in data.files if k.startswith("w_")}
        steps = sorted({int(k.split("_")[1]) for k in data.files if k.startswith("b_")})
        batches = [
            {k.split("_", 2)[2]: data[k] for k in data.files if k.startswith(f"b_{s}_")}
            for s in steps
        ]
        return str(data["model"]), json.loads(str(data["options"])), weights, batches


def main(counts: str, paths: list[str]) -> None:
    backend.use_device("cpu")
    keras = backend.import_keras(None)
    for path in paths:
        for n in map(int, counts.split(",")):
            print(json.dumps(_run_case(keras, path, n)), flush=True)


def _run_case(keras: Any, path: str, n: int) -> dict:
    module, options, weights, batches = _load(path)
    keras.utils.set_random_seed(0)
    try:
        with backend.data_parallel(n):
            networks, step = _networks(module, options)
    except backend.BackendError as exc:
        return {"error": str(exc)}
    for mi, net in enumerate(networks):
        net.set_weights([weights[k] for k in sorted(weights) if k.startswith(f"w_{mi:02d}_")])
    step.refresh()
    if module.endswith(SGD_SUFFIX):
        return _update(path, networks, step, batches[0], n)
    losses = [step(batch) for batch in batches]
    step.sync()  # as a save or preview does; then an eager forward pass and one more step
    if module == "quick96":
        networks[0].predict_preview(batches[0]["target_src"], batches[0]["target_dst"])
    step.refresh()
    losses.append(step(batches[-1]))
    devices = getattr(step, "devices", 1)  # what the step really runs on
    return {"backend": keras.backend.backend(), "devices": devices, "losses": losses}


def _update(path: str, networks: list, step: Any, batch: dict, n: int) -> dict:
    """One step; the change of every weight goes to `<case>.update<n>.npz`."""
    import numpy as np

    before = [w.copy() for net in networks for w in net.get_weights()]
    step(batch)
    step.sync()
    after = [w for net in networks for w in net.get_weights()]
    out = Path(path).with_suffix(f".update{n}.npz")
    np.savez(out, *[a - b for a, b in zip(after, before, strict=True)])
    return {"devices": getattr(step, "devices", 1), "update": str(out)}


def save_case(folder: Path, module: str, options: dict, networks: list, batches: list) -> Path:
    """The parent side: write the case file for main()."""
    import numpy as np

    arrays = {
        f"w_{mi:02d}_{wi:04d}": w
        for mi, net in enumerate(networks)
        for wi, w in enumerate(net.get_weights())
    }
    for s, batch in enumerate(batches):
        arrays.update({f"b_{s}_{k}": v for k, v in batch.items()})
    case = folder / f"{module}.npz"
    np.savez(case, model=np.array(module), options=np.array(json.dumps(options)), **arrays)
    return case


def start(cases: list[Path], backend_name: str, counts: tuple[int, ...]) -> subprocess.Popen:
    """main() on `cases` in a child process with that backend, each on every number of
    devices in `counts` (the CPU is split into the largest)."""
    env = {**os.environ, "KERAS_BACKEND": backend_name, backend.CPU_DEVICES_ENV: str(max(counts))}
    env.pop("XLA_FLAGS", None)  # use_device sets JAX's host device count
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            ",".join(map(str, counts)),
            *map(str, cases),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def results(child: subprocess.Popen) -> list[dict]:
    """The JSON line of each run, in order."""
    out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
    assert child.returncode == 0, err[-3000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
