"""The steps of `dfl merge` (dfl.ui.merge_command runs them in DFL's order): what the pairing
found, the model menu, the device, the questions, then the merge with a progress display."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dfl.errors import EXIT_FAILED, EXIT_OK
from dfl.merge.frames import Pairing
from dfl.merge.run import MergeProgress, MergeReport
from dfl.ui import merge_questions as questions
from dfl.ui import text

SHOWN_NAMES = 3  # files named in a warning before "and N more"
PLAIN_PROGRESS_EVERY_S = 5.0  # without a terminal: one progress line this often


def _names(paths: list[Path]) -> str:
    shown = ", ".join(p.name for p in paths[:SHOWN_NAMES])
    more = len(paths) - SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


class MergeFlow:
    """One `dfl merge` run: its answers and the state between its steps."""

    def __init__(
        self,
        args: argparse.Namespace,
        folders: Any,
        overrides: Mapping[str, str],
        pairing: Pairing,
    ) -> None:
        from dfl.merge.session import MergeSession

        self.args, self.folders, self.overrides, self.pairing = args, folders, overrides, pairing
        self.asker = questions.Asker()
        self.model_type = self.name = self.device = ""
        self.folder = Path()
        self.session = MergeSession()
        self.morph: float | None = None
        self.settings: Any = None
        self.workers = 1
        self.report: MergeReport | None = None

    # ------------------------------------------------------------------ inputs
    def report_pairing(self) -> None:
        p = self.pairing
        faceless = sum(1 for frame in p.frames if not frame.faces)
        where = f"{p.pak} (packed faceset)" if p.pak else str(self.folders.aligned_dir)
        text.info(f"{len(p.frames)} frames, {p.faces} aligned faces from {where}.")
        if p.unusable:
            text.warn(f"{len(p.unusable)} aligned files are not used:")
            for path, reason in p.unusable[: SHOWN_NAMES * 2]:
                text.warn(f"  {path.name}: {reason}")
            if len(p.unusable) > SHOWN_NAMES * 2:
                text.warn(f"  ... and {len(p.unusable) - SHOWN_NAMES * 2} more")
        if p.orphans:
            missing = sorted({face.source_name for face in p.orphans})
            text.warn(
                f"{len(p.orphans)} aligned faces belong to frames that are not in "
                f"{self.folders.input_dir} ({', '.join(missing[:SHOWN_NAMES])}"
                f"{' ...' if len(missing) > SHOWN_NAMES else ''}): they are not merged."
            )
        for group in p.same_stem:
            text.warn(
                f"Frames {_names(group)} share one output name: only {group[0].name} is used."
            )
        self._report_shared()
        if faceless:
            text.info(f"{faceless} frames have no face: they are written unchanged.")

    def check_outputs(self) -> None:
        """Fail before any question when the output folders cannot be written."""
        from dfl.merge.run import prepare_output

        prepare_output(self.folders.output_dir, "output folder")
        prepare_output(self.folders.mask_dir, "mask output folder")

    def _report_shared(self) -> None:
        shared = self.pairing.shared
        if not shared:
            return
        text.warn(
            "Warning: multiple faces detected. Only one alignment file should refer one "
            "source file."
        )
        for frame in shared[: SHOWN_NAMES * 2]:
            for face in frame.faces:
                text.warn(f"  alignment {face.path.name} refers to {frame.name}")
        if len(shared) > SHOWN_NAMES * 2:
            text.warn(f"  ... and {len(shared) - SHOWN_NAMES * 2} more frames")
        text.warn(
            f"{len(shared)} frames get all their faces merged; it is recommended to "
            "process the faces separately (motion blur follows each face)."
        )

    # ------------------------------------------------------------------ model and device
    def pick_model(self) -> None:
        from dfl.merge.session import load_session
        from dfl.store.workspace import model_folder

        self.model_type = _model_type(self.args, self.folders.model_dir)
        self.name = _model_name(self.args, self.folders.model_dir, self.model_type)
        self.folder = model_folder(self.folders.model_dir, self.name, self.model_type)
        questions.check_overrides(self.overrides, self.model_type)
        self.session = load_session(self.folder)
        for note in self.session.notes:
            text.note(note)

    def choose_device(self) -> None:
        from dfl.backend import list_devices
        from dfl.errors import UserError
        from dfl.store.model_store import ModelStore
        from dfl.ui.menu import choose_device, parse_device_choice

        devices = list_devices()
        if self.args.cpu_only:
            choice = "cpu"
        elif self.args.force_gpu_idxs:
            try:
                choice = parse_device_choice(self.args.force_gpu_idxs, devices)
            except ValueError as exc:
                raise UserError(f"invalid device: {exc}") from None
        else:
            stored = ModelStore(self.folder).load(verify_checksums=False).state.device
            choice = choose_device(devices, stored)
        if choice != "cpu" and "," in choice:
            choice = choice.split(",")[0]
            text.note(f"Merging runs the model on one GPU: {choice}.")
        self.device = choice
        if choice == "cpu":
            text.info("The model runs on the CPU.")

    # ------------------------------------------------------------------ questions
    def ask_model_questions(self) -> None:
        if self.model_type == "AMP":
            self.morph = questions.ask_morph(self.asker, self.session.morph_factor, self.overrides)

    def ask_interactive(self) -> bool:
        return questions.ask_interactive(self.asker, self.args.interactive, self.overrides)

    def ask_settings(self) -> None:
        from dfl.merge.session import save_session

        self.settings, notes = questions.ask_settings(
            self.asker, self.session.settings, self.overrides
        )
        for note in notes:
            text.note(note)
        self.workers = questions.ask_workers(self.asker, self.session.workers, self.overrides)
        self.session.settings, self.session.workers = self.settings, self.workers
        self.session.morph_factor = self.morph if self.morph is not None else None
        try:
            save_session(self.folder, self.session)
        except OSError as exc:
            text.warn(f"The settings are not remembered ({exc}); merging anyway.")

    # ------------------------------------------------------------------ the merge
    def _check_face_type(self, model_face: Any) -> None:
        from dfl.data.landmarks import FACE_TYPE_RANK

        narrower = sorted(
            t
            for t in self.pairing.face_types
            if FACE_TYPE_RANK.get(t, 0) < FACE_TYPE_RANK.get(model_face.face_type, 0)
        )
        if narrower:
            text.warn(
                f"The model covers {model_face.face_type} faces but the aligned faces are "
                f"{', '.join(narrower)}: the crop is cut from the frames, so merging works, but "
                "these are not the faces such a model was trained on (extract the dst faces as "
                f"{model_face.face_type} for a faithful result)."
            )

    def load_model(self) -> tuple[Any, dict[str, Any]]:
        """The predictor and the model state key (type, name, iteration, morph factor) that
        decides whether earlier merged frames still count."""
        from dfl.merge.predictor import load_predictor

        text.info(f"Loading {self.name}_{self.model_type} model...")
        predictor = load_predictor(self.folder, morph_factor=self.morph)
        text.info(
            f"Model: {self.name}_{self.model_type}, iteration "
            f"{predictor.info.iteration}, {predictor.model_face.resolution} px "
            f"{predictor.model_face.face_type}."
        )
        self._check_face_type(predictor.model_face)
        key = {
            "model_type": self.model_type,
            "model": self.name,
            "iteration": predictor.info.iteration,
            "morph_factor": self.morph,
        }
        return predictor, key

    def run(self) -> int:
        from dfl.merge.run import MergeJob, run_merge, stale_outputs

        predictor, key = self.load_model()
        job = MergeJob(
            frames=self.pairing.frames,
            output_dir=self.folders.output_dir,
            mask_dir=self.folders.mask_dir,
            settings=self.settings,
            model_key=key,
            workers=self.workers,
        )
        display = ProgressDisplay(len(job.frames))
        try:
            self.report = run_merge(job, predictor, progress=display)
        finally:
            display.close()
        stale = stale_outputs(job)
        if stale:
            text.warn(
                f"{len(stale)} older images in {job.output_dir} belong to no frame here "
                f"({_names(stale)})."
            )
        return self._summary(job)

    def _summary(self, job: Any) -> int:
        r = self.report
        assert r is not None
        if r.restarted:
            text.note(
                "The model or the settings changed since the last merge: all frames "
                "were merged again."
            )
        if r.resumed:
            text.info(f"{r.resumed} frames were already merged by an earlier run (kept).")
        if len(r.sizes) > 1:
            sizes = ", ".join(f"{w}x{h} ({n})" for (w, h), n in r.sizes.most_common())
            text.warn(
                f"The frames have different sizes: {sizes}. Each is merged at its own "
                "size, but a video needs one size."
            )
        for name, reason in r.failed:
            text.error(f"{name} {reason}")
        text.info(
            f"Merged {r.merged} frames, {r.copied} without faces copied, in {r.elapsed_s:.1f} s "
            f"({r.frames_per_s:.2f} frames/s) into {job.output_dir} (masks: {job.mask_dir})."
        )
        if r.failed:
            text.warn(f"{len(r.failed)} frames could not be merged (listed above).")
        return EXIT_OK if r.written + r.resumed > 0 else EXIT_FAILED

    def interrupted_message(self) -> str:
        return (
            "Interrupted: the frames merged so far are kept; run the same command again to "
            "merge the rest."
        )


class ProgressDisplay:
    """A tqdm bar with frames/s on a terminal; otherwise a plain line every few seconds."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None
        self.last_line = 0.0
        self.shown = 0

    def __call__(self, p: MergeProgress) -> None:
        if sys.stderr.isatty():
            self._bar(p)
            return
        now = time.monotonic()
        if p.done == p.total or (p.merged_now and now - self.last_line >= PLAIN_PROGRESS_EVERY_S):
            self.last_line = now
            print(f"Merging: {p.done}/{p.total} frames, {p.frames_per_s:.2f} frames/s", flush=True)

    def _bar(self, p: MergeProgress) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(
                total=p.total, initial=p.done, desc="Merging", unit="frame", dynamic_ncols=True
            )
            self.shown = p.done
        self.bar.update(p.done - self.shown)
        self.shown = p.done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _saved_types(model_dir: Path) -> list[str]:
    """Model types with saved models, the newest model's type first."""
    from dfl.models.registry import MODELS
    from dfl.store.workspace import list_models

    newest = {t: m[0].mtime for t in MODELS if (m := list_models(model_dir, t))}
    return sorted(newest, key=lambda t: -newest[t])


def _model_type(args: argparse.Namespace, model_dir: Path) -> str:
    from dfl.errors import UserError
    from dfl.models.registry import canonical_name
    from dfl.options import Option

    if not model_dir.is_dir():
        raise UserError(f"model folder not found: {model_dir}")
    if args.model:
        return canonical_name(args.model)
    saved = _saved_types(model_dir)
    if not saved:
        raise UserError(f"no saved models in {model_dir}: train one first with `dfl train`")
    if len(saved) == 1:
        text.info(f"Model type: {saved[0]} (the only type with saved models)")
        return saved[0]
    option = Option(
        name="model",
        label="Model",
        type=str,
        default=saved[0],
        choices=tuple(saved),
        help="The type of the saved model to merge with.",
    )
    asker = questions.Asker()
    return canonical_name(asker(option, saved[0], {}))


def _model_name(args: argparse.Namespace, model_dir: Path, model_type: str) -> str:
    from dfl.errors import UserError
    from dfl.store.workspace import list_models
    from dfl.ui.menu import choose_model

    models = list_models(model_dir, model_type)
    if not models:
        raise UserError(f"no saved {model_type} models in {model_dir}: train one first")
    name = args.force_model_name
    if name:
        if name not in {entry.name for entry in models}:
            known = ", ".join(entry.name for entry in models)
            raise UserError(f"no saved {model_type} model named {name!r} (saved: {known})")
        return name
    return choose_model(model_dir, model_type, allow_new=False)
