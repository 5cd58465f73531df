"""Merge speed: frames per second of `dfl merge`'s runner for a frame size and model.

Prints one JSON line per case (model at its small test size and at its default size): frames/s
of the whole run (reading, cutting, the network batched, merging and writing the PNGs in the
worker threads), the model's share (ms per face in the network) and the settings used. The
frames are DFL's fixture frames (tests/data/dfl-merge) scaled to --frame-size with their faces'
landmarks; the models are built with random weights and saved, then loaded as `dfl merge` does.

    python bench/merge_cpu.py [--frame-size 1280x720] [--frames 24] [--model SAEHD]
        [--size small|default|both] [--mode overlay] [--mask-mode dst] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

MODELS = ("Quick96", "SAEHD", "AMP")
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "data" / "dfl-merge"
WARMUP_FRAMES = 2  # merged first and not timed: graph build and compilation


def _parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def write_frames(root: Path, count: int, size: tuple[int, int]) -> tuple[Path, Path]:
    """`count` frames of `size` (w, h) from the fixture's, with aligned faces naming them."""
    from dfl.data.jpeg_metadata import read_dfl_metadata, write_dfl_jpeg

    frames, aligned = root / "frames", root / "aligned"
    frames.mkdir(parents=True)
    aligned.mkdir()
    sources = sorted((FIXTURE / "frames").glob("*.png"))
    for i in range(count):
        source = sources[i % len(sources)]
        image = cv2.imread(str(source))
        scale = min(size[0] / image.shape[1], size[1] / image.shape[0])
        inner = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        left, top = (size[0] - inner.shape[1]) // 2, (size[1] - inner.shape[0]) // 2
        canvas = cv2.copyMakeBorder(  # the scene's edges continue to fill the frame
            inner,
            top,
            size[1] - inner.shape[0] - top,
            left,
            size[0] - inner.shape[1] - left,
            cv2.BORDER_REFLECT,
        )
        meta = read_dfl_metadata(FIXTURE / "aligned" / f"{source.stem}_0.jpg")
        landmarks = np.asarray(meta["source_landmarks"], np.float32) * scale + (left, top)
        name = f"{i:05d}.png"
        cv2.imwrite(str(frames / name), canvas)
        face = {"face_type": "whole_face", "landmarks": meta["landmarks"]}
        face.update(source_filename=name, source_landmarks=landmarks.tolist())
        write_dfl_jpeg(aligned / f"{i:05d}_0.jpg", np.zeros((8, 8, 3), np.uint8), face)
    return frames, aligned


def save_model(folder: Path, model_type: str, small: bool) -> dict:
    """A saved model with random weights; returns its options."""
    from dfl.models.registry import load
    from dfl.options import complete_options
    from dfl.store.checkpoint_state import ModelState
    from dfl.store.model_store import ModelStore
    from dfl.training.trainer import weights_to_arrays

    spec = load(model_type)
    options = complete_options(spec.option_table(None), dict(spec.tiny_options) if small else {})
    model = spec.build(options)
    arrays = {name: weights_to_arrays(net.weights) for name, net in model.networks.items()}
    state = ModelState(model_type=model_type, name="bench", iteration=1, options=options)
    ModelStore(folder).save(state, arrays, summary_text="", loss_rows=0)
    return options


class TimedPredictor:
    """Wraps a predictor to add up the time spent in the network."""

    def __init__(self, predictor) -> None:
        self.inner = predictor
        self.model_face = predictor.model_face
        self.batch_size = predictor.batch_size
        self.seconds = 0.0
        self.faces = 0

    def predict(self, faces: np.ndarray) -> list:
        start = time.perf_counter()
        result = self.inner.predict(faces)
        self.seconds += time.perf_counter() - start
        self.faces += len(faces)
        return result


def run_case(args: argparse.Namespace, model_type: str, small: bool, root: Path) -> dict:
    from dfl.merge.frames import pair_frames
    from dfl.merge.predictor import load_predictor
    from dfl.merge.run import MergeJob, run_merge
    from dfl.merge.settings import questionnaire_defaults, settings_from_options

    folder = root / f"bench_{model_type}_{'small' if small else 'default'}"
    save_model(folder, model_type, small)
    morph = 1.0 if model_type == "AMP" else None
    predictor = TimedPredictor(load_predictor(folder, morph_factor=morph, batch_size=args.batch))
    values = {"mode": args.mode, "mask_mode": args.mask_mode}
    if args.color_transfer:
        values["color_transfer_mode"] = args.color_transfer
    settings = settings_from_options(values, questionnaire_defaults())
    frames, aligned = root / "frames", root / "aligned"
    pairing = pair_frames(frames, aligned)

    def job(frame_list, out: str) -> MergeJob:
        return MergeJob(
            frame_list, root / out, root / f"{out}_mask", settings, {"r": out}, workers=args.workers
        )

    run_merge(job(pairing.frames[:WARMUP_FRAMES], f"warm_{folder.name}"), predictor)
    predictor.seconds, predictor.faces = 0.0, 0
    report = run_merge(job(pairing.frames[WARMUP_FRAMES:], f"out_{folder.name}"), predictor)
    return {
        "model": model_type,
        "size": "small" if small else "default",
        "resolution": predictor.model_face.resolution,
        "face_type": predictor.model_face.face_type,
        "frame": f"{args.frame_size[0]}x{args.frame_size[1]}",
        "frames": report.written,
        "frames_per_s": round(report.frames_per_s, 2),
        "network_ms_per_face": round(1000 * predictor.seconds / max(1, predictor.faces), 1),
        "network_share": round(predictor.seconds / max(1e-9, report.elapsed_s), 3),
        "workers": args.workers,
        "batch": args.batch,
        "settings": {k: v for k, v in settings.to_json().items() if k in values},
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame-size", type=_parse_size, default=(1280, 720), metavar="WxH")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--model", action="append", choices=MODELS, help="repeatable; default all")
    parser.add_argument("--size", choices=("small", "default", "both"), default="both")
    parser.add_argument("--mode", default="overlay")
    parser.add_argument("--mask-mode", default="dst")
    parser.add_argument("--color-transfer", default=None, help="e.g. rct (default none)")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--batch", type=int, default=8, help="faces per network call")
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--device", default="cpu", help="'cpu' or a GPU index")
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend

    from dfl import backend

    backend.select(args.backend)
    backend.use_device(args.device)
    backend.import_keras(args.backend)
    sizes = {"small": (True,), "default": (False,), "both": (True, False)}[args.size]
    with tempfile.TemporaryDirectory(prefix="dfl-merge-bench-") as tmp:
        root = Path(tmp)
        write_frames(root, args.frames + WARMUP_FRAMES, args.frame_size)
        for model_type in args.model or MODELS:
            for small in sizes:
                print(json.dumps(run_case(args, model_type, small, root)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
