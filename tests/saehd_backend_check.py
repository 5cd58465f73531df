"""Child process of test_saehd_backends and test_amp_backends: a model's loss groups of saved
weights and a batch on $KERAS_BACKEND."""

# usage: KERAS_BACKEND=jax python tests/saehd_backend_check.py case.npz
# The .npz holds `options` (JSON of resolved options), optionally `model` (the module under
# dfl.models, default saehd), the weights of every network of <model>.make_training(...).models
# as `w_<model index>_<weight index>` in get_weights() order, and the batch as `b_<input name>`.
# Prints one JSON line: the losses of every group before the step, those the multi-group step
# returns, and those after it.

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dfl import backend

CHILD_TIMEOUT_S = 300


def main(path: str) -> None:
    name = backend.select(None)
    import importlib

    import keras
    import numpy as np

    from dfl.backend import make_step

    keras.utils.set_random_seed(0)
    with np.load(path, allow_pickle=False) as data:
        options = json.loads(str(data["options"]))
        weights = {k: data[k] for k in data.files if k.startswith("w_")}
        batch = {k[2:]: data[k] for k in data.files if k.startswith("b_")}
        module = str(data["model"]) if "model" in data.files else "saehd"
    spec = importlib.import_module(f"dfl.models.{module}.model")
    model = spec.build(options)
    training = spec.make_training(options, model)
    for mi, net in enumerate(training.models):
        keys = sorted(k for k in weights if k.startswith(f"w_{mi:02d}_"))
        net.set_weights([weights[k] for k in keys])
    step = make_step(training.groups, training.models)
    before = step.evaluate(batch)
    during = step(batch)
    after = step.evaluate(batch)
    groups = [g.name for g in training.groups]
    print(
        json.dumps(
            {"backend": name, "groups": groups, "before": before, "step": during, "after": after}
        )
    )


def run_on_every_backend(
    folder: Path, module: str, options: dict, training: Any, batch: dict
) -> dict[str, dict]:
    """The parent side: save the weights of `training.models` and the batch, run this script on
    every backend at once and return each one's JSON result by backend name."""
    import numpy as np

    weights = {
        f"w_{mi:02d}_{wi:04d}": w
        for mi, net in enumerate(training.models)
        for wi, w in enumerate(net.get_weights())
    }
    case = folder / "case.npz"
    np.savez(
        case,
        options=np.array(json.dumps(options)),
        model=np.array(module),
        **weights,
        **{f"b_{k}": v for k, v in batch.items()},
    )
    children = {
        name: subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(case)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KERAS_BACKEND": name},
        )
        for name in backend.BACKENDS
    }
    results = {}
    for name, child in children.items():
        out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
        assert child.returncode == 0, f"{name}: {err[-3000:]}"
        results[name] = json.loads(out.strip().splitlines()[-1])
        assert results[name]["backend"] == name
    return results


def assert_backends_agree(results: dict[str, dict], groups: list[str], tolerance: float) -> None:
    """Every backend ran `groups` and reports the same finite losses as TensorFlow (within
    `tolerance`) before, during and after the step; the step lowered every group's objective."""
    import math

    reference = results["tensorflow"]
    keys = sorted(reference["before"])
    assert {f"{group}_loss" for group in groups} <= set(keys)
    for phase in ("before", "step", "after"):
        assert sorted(reference[phase]) == keys
        assert all(math.isfinite(reference[phase][k]) for k in keys)
    for group in groups:  # one step moves every group's objective down
        assert reference["after"][f"{group}_loss"] < reference["before"][f"{group}_loss"], group
    for name, result in results.items():
        assert result["groups"] == groups, name
        for phase in ("before", "step", "after"):
            assert sorted(result[phase]) == keys, (name, phase)
            for key in keys:
                value, expected = result[phase][key], reference[phase][key]
                assert abs(value - expected) <= tolerance, (name, phase, key, value, expected)


if __name__ == "__main__":
    main(sys.argv[1])
