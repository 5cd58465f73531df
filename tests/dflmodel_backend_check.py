"""Child process of test_dflmodel_backends: import DFL models on $KERAS_BACKEND and run their
networks on fixed faces.

usage: KERAS_BACKEND=jax python tests/dflmodel_backend_check.py WORK DFL_FOLDER...
Imports each DFL folder's model into WORK/<backend>/ and writes its outputs to
WORK/<backend>/<folder name>.npz: SAEHD's ss, ssm, dd, ddm, sd, sdm (predict_preview); AMP's
swap image and mask at morph values 0 and 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dfl import backend

CHILD_TIMEOUT_S = 300
FACES = 2  # fixed random faces per side
SEED = 0


def _outputs(dfl_folder: Path, model_dir: Path) -> dict:
    import numpy as np

    from dfl.interop.deepfacelab import find_dfl_models
    from dfl.interop.deepfacelab.importer import import_dfl_model
    from dfl.models.registry import load as load_model
    from dfl.store.model_store import ModelStore

    (files,) = find_dfl_models(dfl_folder)
    report = import_dfl_model(files, model_dir)
    loaded = ModelStore(report.folder).load()
    options = loaded.state.options
    model = load_model(report.model_type).build(options)
    for name, network in model.networks.items():
        arrays = loaded.arrays(name)
        network.set_weights([arrays[key] for key in sorted(arrays)])
    res = int(options["resolution"])
    rng = np.random.default_rng(SEED)
    src, dst = (rng.random((FACES, res, res, 3), dtype=np.float32) for _ in range(2))
    if report.model_type != "AMP":
        return model.predict_preview(src, dst)
    results = {}
    for value in (0.0, 1.0):
        results[f"swap{value}"], results[f"swapm{value}"] = model.swap(dst, value)
    return results


def main(work: str, *dfl_folders: str) -> None:
    name = backend.select(None)
    backend.use_device("cpu")
    import numpy as np

    out = Path(work) / name
    out.mkdir()
    for folder in map(Path, dfl_folders):
        results = _outputs(folder, out)
        np.savez(out / f"{folder.name}.npz", **{k: np.asarray(v) for k, v in results.items()})


def run_on_every_backend(work: Path, dfl_folders: list[Path]) -> dict[str, dict[str, dict]]:
    """The parent side: every backend at once; returns outputs by backend, then folder name."""
    import numpy as np

    children = {
        name: subprocess.Popen(
            [sys.executable, __file__, str(work), *map(str, dfl_folders)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KERAS_BACKEND": name},
        )
        for name in backend.BACKENDS
    }
    results: dict[str, dict[str, dict]] = {}
    for name, child in children.items():
        _, err = child.communicate(timeout=CHILD_TIMEOUT_S)
        assert child.returncode == 0, f"{name}: {err[-3000:]}"
        results[name] = {}
        for folder in dfl_folders:
            with np.load(work / name / f"{folder.name}.npz") as data:
                results[name][folder.name] = {k: data[k] for k in data.files}
    return results


if __name__ == "__main__":
    main(*sys.argv[1:])
