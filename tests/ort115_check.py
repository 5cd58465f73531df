"""Open .dfm files with another onnxruntime (DeepFaceLive pins 1.15.1) and compare the outputs.

Run by a separate interpreter that has onnxruntime and numpy but not Keras, from the repository
root (tests/test_export_ort115.py does this with $DFL_ORT115_PYTHON):

    python tests/ort115_check.py [--expect-version 1.15] cases.json

cases.json lists {"dfm": path, "arrays": path.npz, "tolerance": float}; each .npz holds
`morphs` (float32, one 0 for models without morph), `faces_<N>` and `out_<N>_<m>_<k>` (the
Keras outputs for morph index m, output k). Exit code 0 when every file passes DeepFaceLive's
checks and matches, 1 with a message otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # dfl, without installing it

from dfl.interop.deepfacelive import verify  # only numpy and onnxruntime behind it
from dfl.interop.deepfacelive.errors import VerificationError


def check_case(case: dict) -> float:
    """The largest output difference of one file; VerificationError when it fails."""
    session = verify.open_session(case["dfm"])
    info = verify.check_inputs(session.get_inputs())
    verify.check_names(session)
    with np.load(case["arrays"], allow_pickle=False) as arrays:
        data = {key: arrays[key] for key in arrays.files}
    worst = 0.0
    batches = sorted(int(key.split("_")[1]) for key in data if key.startswith("faces_"))
    for n in batches:
        for m, morph in enumerate(data["morphs"]):
            outputs = verify.run(session, info, data[f"faces_{n}"], float(morph))
            for k, got in enumerate(outputs):
                diff = float(np.max(np.abs(got - data[f"out_{n}_{m}_{k}"])))
                if not diff < case["tolerance"]:
                    raise VerificationError(
                        f"{case['dfm']}: output {k} differs by {diff:.3g} (N = {n}, morph {morph})"
                    )
                worst = max(worst, diff)
    return worst


def main(argv: list[str] | None = None) -> int:
    import onnxruntime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", type=Path)
    parser.add_argument("--expect-version", help="required onnxruntime version prefix")
    args = parser.parse_args(argv)
    version = onnxruntime.__version__
    if args.expect_version and not version.startswith(args.expect_version):
        print(f"onnxruntime {version}, expected {args.expect_version}", file=sys.stderr)
        return 1
    failed = False
    for case in json.loads(args.cases.read_text(encoding="utf-8")):
        try:
            worst = check_case(case)
        except VerificationError as exc:
            print(f"FAIL {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"ok {Path(case['dfm']).name}: onnxruntime {version}, max diff {worst:.2e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
