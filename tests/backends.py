"""The one harness that runs checks on every Keras backend: a plan of named checks
(tests/backend_checks.py) runs in one child process per backend with $KERAS_BACKEND set, all
children at once, while the test process runs the same plan on its own backend.

usage (the child side): KERAS_BACKEND=jax python -m tests.backends '[["loss_groups", []]]'
prints one JSON line per check, in order. The child sees only the CPU (and $DFL_CPU_DEVICES
virtual devices where that is set), as `dfl train --device cpu` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dfl import backend

CHILD_TIMEOUT_S = 600  # the heaviest plan imports two DFL models and trains three tiny ones
ROOT = Path(__file__).resolve().parents[1]  # the child imports `tests.*` from here
Plan = list[tuple[str, list[Any]]]  # [check name, its arguments (JSON values)]


def loaded_backend() -> str:
    """The backend of this process (Keras is loaded by the test files)."""
    import keras

    return keras.backend.backend()


def other_backends() -> list[str]:
    return [name for name in backend.BACKENDS if name != loaded_backend()]


def start(name: str, plan: Plan, **env: str) -> subprocess.Popen:
    """The plan in a child process on backend `name` (extra environment in `env`)."""
    child_env = {**os.environ, "KERAS_BACKEND": name, **env}
    child_env.pop("XLA_FLAGS", None)  # use_device sets JAX's host device count
    return subprocess.Popen(
        [sys.executable, "-m", "tests.backends", json.dumps(plan)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env,
        cwd=ROOT,
    )


def results(child: subprocess.Popen) -> list[Any]:
    """The result of each check of the child's plan, in order."""
    out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
    assert child.returncode == 0, err[-3000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith(("{", "["))]


def run_everywhere(plan: Plan, **env: str) -> dict[str, list[Any]]:
    """The plan on every backend: children for the others, this process for its own (while
    the children run). Each backend's results by name."""
    from tests.backend_checks import run_plan

    children = {name: start(name, plan, **env) for name in other_backends()}
    runs = {loaded_backend(): run_plan(plan)}
    for name, child in children.items():
        runs[name] = results(child)
    return runs


def main(plan_json: str) -> None:
    backend.use_device("cpu")  # before Keras loads
    backend.import_keras(None)
    from tests.backend_checks import CHECKS

    for name, args in json.loads(plan_json):
        print(json.dumps(CHECKS[name](*args)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
