"""`dfl extract-video` and `dfl video-from-sequence` (alias `merged-to-mp4`): DFL's video helpers
on top of dfl.video, with DFL's flags and questions and a progress bar."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dfl.options import Option
from dfl.ui import text
from dfl.ui.prompts import INPUT_CLOSED_MESSAGE, InputClosed, ask_option

SIDES = ("data_dst", "data_src")  # the default video is data_dst.*, else data_src.*
MERGED_DIR = "merged"
MASK_SUFFIX = "_mask"  # merged -> merged_mask, result.mp4 -> result_mask.mp4
DEFAULT_OUTPUT = "result.mp4"
PLAIN_PROGRESS_EVERY_S = 2.0  # without a terminal, one progress line at most this often

FPS_OPTION = Option(
    name="fps",
    label="Enter FPS",
    type=int,
    default=0,
    range=(0, None),
    help="Frames per second to write; 0 keeps every frame at the video's own rate. "
    "A lower rate gives fewer images (frames are dropped evenly).",
)
EXT_OPTION = Option(
    name="output_ext",
    label="Output image format",
    type=str,
    default="png",
    choices=("png", "jpg"),
    help="png keeps the frames exactly but takes about ten times the disk space of jpg "
    "and is slower to write.",
)
SEQUENCE_FPS_OPTION = Option(
    name="fps",
    label="Enter FPS",
    type=int,
    default=25,
    range=(1, None),
    help="Frame rate of the video (there is no reference video to take it from).",
)
BITRATE_OPTION = Option(
    name="bitrate",
    label="Bitrate of output file in Mbit/s",
    type=int,
    default=16,
    range=(1, None),
    help="Video bitrate in megabits per second; higher is better quality and a bigger file.",
)


class Asker:
    """Asks options on the console; after the input closes it takes the defaults, saying so."""

    def __init__(self) -> None:
        self.closed = False

    def __call__(self, option: Option) -> Any:
        if self.closed:
            return option.default
        try:
            return ask_option(option, option.default)
        except InputClosed:
            self.closed = True
            text.note(INPUT_CLOSED_MESSAGE)
            return option.default


def progress_bar(desc: str, unit: str = "frame") -> tuple[Callable[[int, int | None], None], Any]:
    """A (callback, closer) pair: a tqdm bar on a terminal, plain periodic lines otherwise."""
    if sys.stderr.isatty():
        bar = tqdm(desc=desc, unit=unit, dynamic_ncols=True)

        def update(done: int, total: int | None) -> None:
            if total and bar.total != max(total, done):
                bar.total = max(total, done)
            bar.update(done - bar.n)

        return update, bar.close
    last = [0.0]

    def plain(done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - last[0] >= PLAIN_PROGRESS_EVERY_S or (total is not None and done >= total):
            last[0] = now
            text.info(f"{desc}: {done}/{total if total else '?'} {unit}s")

    return plain, lambda: None


def _workspace(args: argparse.Namespace) -> Path:
    return (args.workspace or Path.cwd() / "workspace").expanduser().resolve()


def _default_video(workspace: Path) -> Path:
    from dfl.video import VideoError, resolve_video_path

    for side in SIDES:
        try:
            return resolve_video_path(workspace / f"{side}.*")
        except VideoError:
            continue
    names = " or ".join(f"{side}.*" for side in SIDES)
    raise VideoError(f"no video given and no {names} in {workspace}; use --input-file")


def extract_video(args: argparse.Namespace) -> int:
    """`dfl extract-video`: a video's frames into data_dst (or data_src) as 00001.png ..."""
    from dfl.video import extract_frames, resolve_video_path

    workspace = _workspace(args)
    video = resolve_video_path(args.input_file) if args.input_file else _default_video(workspace)
    side = "data_src" if video.stem.lower() == "data_src" else "data_dst"
    output_dir = args.output_dir or workspace / side
    ask = Asker()
    fps = args.fps if args.fps is not None else ask(FPS_OPTION)
    ext = args.output_ext or ask(EXT_OPTION)
    text.info(f"Extracting {video} into {output_dir}")
    update, close = progress_bar("Extracting")
    try:
        result = extract_frames(video, output_dir, fps=fps or None, ext=ext, progress=update)
    finally:
        close()
    if result.removed:
        text.note(f"Removed {result.removed} old .{ext} frame(s) from {output_dir} first")
    rate = float(result.fps)
    text.info(f"{result.frames} frames written to {output_dir} ({rate:.3f} frames/s)")
    return 0


def _encode(
    frames_dir: Path,
    output: Path,
    reference: Path | None,
    fps: int | None,
    args: argparse.Namespace,
) -> None:
    from dfl.video import frames_to_video

    text.info(f"Writing {output} from {frames_dir}")
    update, close = progress_bar("Encoding")
    try:
        result = frames_to_video(
            frames_dir,
            output,
            reference_video=reference,
            fps=fps,
            bitrate_mbps=args.bitrate or BITRATE_OPTION.default,
            lossless=args.lossless,
            include_audio=args.include_audio,
            ext=args.ext,
            progress=update,
        )
    finally:
        close()
    sound = " with the reference's sound" if result.audio_samples else ""
    width, height = result.size
    text.info(
        f"{output}: {result.frames} frames, {width}x{height}, {float(result.fps):.3f} frames/s, "
        f"{result.codec}{sound}"
    )
    if result.padded:
        text.note("An odd width or height was padded by one pixel (H.264 4:2:0 needs even sizes).")


def _reference(args: argparse.Namespace, workspace: Path) -> Path | None:
    from dfl.video import VideoError, resolve_video_path

    if args.reference_file is not None:
        return resolve_video_path(args.reference_file)
    try:
        return resolve_video_path(workspace / "data_dst.*")
    except VideoError:
        return None


def video_from_sequence(args: argparse.Namespace) -> int:
    """`dfl video-from-sequence`: merged frames (and their masks) as result.mp4."""
    from dfl.video import VideoError

    workspace = _workspace(args)
    frames_dir = (args.input_dir or workspace / "data_dst" / MERGED_DIR).expanduser()
    output = (args.output_file or workspace / DEFAULT_OUTPUT).expanduser()
    reference = _reference(args, workspace)
    if not frames_dir.is_dir():
        raise VideoError(f"frame folder not found: {frames_dir} (merge first: dfl merge)")
    ask = Asker()
    fps = None
    if reference is None:
        text.note("No reference video: the frame rate is asked and the video has no sound.")
        fps = args.fps or ask(SEQUENCE_FPS_OPTION)
    elif args.fps:
        text.note(f"--fps {args.fps} is ignored: the frame rate comes from {reference.name}")
    if not args.lossless and args.bitrate is None:
        args.bitrate = ask(BITRATE_OPTION)
    _encode(frames_dir, output, reference, fps, args)
    mask_dir = args.input_mask_dir or frames_dir.with_name(frames_dir.name + MASK_SUFFIX)
    if args.no_mask or not mask_dir.is_dir():
        return 0
    mask_output = output.with_name(output.stem + MASK_SUFFIX + output.suffix)
    _encode(mask_dir, mask_output, reference, fps, args)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The two sub-commands, with DFL's flag names."""
    p = sub.add_parser(
        "extract-video",
        help="a video's frames as images (00001.png ...) in data_dst or data_src",
        description="Extract the frames of a video as numbered images, as DFL's "
        "'extract images from video'. Without --input-file: workspace/data_dst.* (else "
        "data_src.*). Images of the chosen format already in the output folder are removed.",
    )
    p.add_argument("--workspace", type=Path, help="workspace folder (default: ./workspace)")
    p.add_argument(
        "--input-file",
        help="the video; <folder>/<name>.* takes the first file named <name> (e.g. data_dst.*)",
    )
    p.add_argument(
        "--output-dir",
        type=Path,
        help="folder for the images (default: workspace/data_src for a data_src video, "
        "else workspace/data_dst)",
    )
    p.add_argument("--output-ext", choices=EXT_OPTION.choices, help="png or jpg (asked if omitted)")
    p.add_argument(
        "--fps", type=int, help="frames per second to extract, 0 = all (asked if omitted)"
    )
    p.set_defaults(func=extract_video)

    p = sub.add_parser(
        "video-from-sequence",
        aliases=["merged-to-mp4"],
        help="merged frames as a video (result.mp4) with the dst video's frame rate and sound",
        description="Encode an image sequence (default: workspace/data_dst/merged) as H.264 "
        "video, as DFL's 'merged to mp4'. The reference video (default: workspace/data_dst.*) "
        "gives the frame rate and the sound. The masks in <input-dir>_mask (merged_mask) become "
        "result_mask.mp4. --lossless writes bit-exact H.264 RGB (libx264rgb, qp 0).",
    )
    p.add_argument("--workspace", type=Path, help="workspace folder (default: ./workspace)")
    p.add_argument("--input-dir", type=Path, help="the frames (default: workspace/data_dst/merged)")
    p.add_argument("--output-file", type=Path, help="the video (default: workspace/result.mp4)")
    p.add_argument("--reference-file", help="video giving fps and sound (default: data_dst.*)")
    p.add_argument("--ext", help="take only images of this extension (default: any one kind)")
    p.add_argument("--fps", type=int, help="frame rate when there is no reference (asked)")
    p.add_argument("--bitrate", type=int, help="megabits per second (asked if omitted; 16)")
    p.add_argument(
        "--include-audio",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the reference's sound, re-encoded as AAC (default: yes)",
    )
    p.add_argument(
        "--lossless", action="store_true", help="bit-exact H.264 RGB instead of 4:2:0 at a bitrate"
    )
    p.add_argument("--input-mask-dir", type=Path, help="mask frames (default: <input-dir>_mask)")
    p.add_argument("--no-mask", action="store_true", help="do not write the mask video")
    p.set_defaults(func=video_from_sequence)
