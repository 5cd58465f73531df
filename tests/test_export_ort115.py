"""The exported .dfm files open and compute the same outputs in onnxruntime 1.15 (DeepFaceLive's
pinned version), run by the interpreter in $DFL_ORT115_PYTHON (tests/ort115_check.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dfl import backend

backend.select(None)

from dfl.interop.deepfacelive import verify  # noqa: E402
from dfl.interop.deepfacelive.dfm import write_dfm  # noqa: E402
from dfl.interop.deepfacelive.wiring import has_morph, reference_outputs  # noqa: E402
from dfl.models.quick96 import model as quick96  # noqa: E402
from dfl.nn.archi_networks import Architecture  # noqa: E402
from dfl.nn.autoencoders import build_autoencoder  # noqa: E402

ORT115_PYTHON = os.environ.get("DFL_ORT115_PYTHON")
EXPECTED_VERSION = "1.15"
ROOT = Path(__file__).resolve().parent.parent
RES = 32
TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(
    not ORT115_PYTHON,
    reason="DFL_ORT115_PYTHON is not set (a Python with onnxruntime==1.15.1 and numpy<2)",
)


def _networks() -> dict[str, tuple[dict, bool]]:
    """Name -> (networks, quantize): every layout, the cosine variants, fp16, AMP if present."""
    cases = {
        "quick96": (quick96.build(None, quick96.TINY).networks, False),
        "df-udtc": (
            build_autoencoder("df", Architecture(RES, 16, 8, 8, 4, "udtc")).networks,
            False,
        ),
        "liae-ud-fp16": (
            build_autoencoder("liae", Architecture(RES, 16, 8, 8, 4, "ud")).networks,
            True,
        ),
    }
    try:
        from dfl.models.amp.network import AMPArchitecture, AMPAutoencoder
    except ImportError:
        return cases
    cases["amp"] = (AMPAutoencoder(AMPArchitecture(RES, 16, 32, 8, 8, 4)).networks, False)
    return cases


def _write_case(folder: Path, name: str, networks: dict, quantize: bool) -> dict:
    path = folder / f"{name}.dfm"
    write_dfm(networks, path, quantize=quantize)
    morphs = verify.VERIFY_MORPHS if has_morph(networks) else (0.0,)
    arrays: dict[str, np.ndarray] = {"morphs": np.float32(morphs)}
    rng = np.random.default_rng(1)
    for n in (1, 3):
        faces = rng.uniform(0, 1, (n, RES, RES, 3)).astype(np.float32)
        arrays[f"faces_{n}"] = faces
        wanted = reference_outputs(networks, faces, morphs if has_morph(networks) else (None,))
        for m, outs in enumerate(wanted):
            for k, out in enumerate(outs):
                arrays[f"out_{n}_{m}_{k}"] = out
    np.savez(folder / f"{name}.npz", **arrays)
    tolerance = verify.FP16_TOLERANCE if quantize else verify.FP32_TOLERANCE
    return {"dfm": str(path), "arrays": str(folder / f"{name}.npz"), "tolerance": tolerance}


def test_exports_open_and_match_in_onnxruntime_115(tmp_path: Path) -> None:
    cases = [_write_case(tmp_path, name, *case) for name, case in _networks().items()]
    manifest = tmp_path / "cases.json"
    manifest.write_text(json.dumps(cases), encoding="utf-8")
    result = subprocess.run(
        [
            ORT115_PYTHON,
            str(ROOT / "tests" / "ort115_check.py"),
            "--expect-version",
            EXPECTED_VERSION,
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") == len(cases), result.stdout
