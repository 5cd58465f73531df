"""An imported DFL model gives the same outputs on TensorFlow, JAX and torch: each backend imports
the fixtures itself and runs their networks on the same fixed faces."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tests.dflmodel_backend_check import run_on_every_backend

FIXTURES = Path(__file__).parent / "data" / "dfl-models"
CASES = ("tiny-saehd-liae-ud-64", "tiny-amp-64")
OUTPUT_TOLERANCE = 1e-4  # sigmoid outputs in [0, 1]


def test_imported_models_agree_across_backends(tmp_path: Path) -> None:
    folders = []
    for case in CASES:
        folders.append(tmp_path / case)
        shutil.copytree(FIXTURES / case, folders[-1])
    results = run_on_every_backend(tmp_path, folders)
    reference = results["tensorflow"]
    for case in CASES:
        expected = reference[case]
        assert expected, case
        for name, by_case in results.items():
            outputs = by_case[case]
            assert sorted(outputs) == sorted(expected), (name, case)
            for key, value in outputs.items():
                assert value.shape == expected[key].shape, (name, case, key)
                assert np.all(np.isfinite(value)), (name, case, key)
                np.testing.assert_allclose(
                    value, expected[key], atol=OUTPUT_TOLERANCE, err_msg=f"{name} {case} {key}"
                )
