"""Video in and out through PyAV (FFmpeg in its wheels): a video's frames as numbered images,
and an image sequence as a video with the reference video's frame rate and sound."""

from dfl.video.common import VideoError, resolve_video_path
from dfl.video.encode import DEFAULT_BITRATE_MBPS, DEFAULT_FPS, EncodeResult, frames_to_video
from dfl.video.extract import ExtractResult, extract_frames

__all__ = [
    "DEFAULT_BITRATE_MBPS",
    "DEFAULT_FPS",
    "EncodeResult",
    "ExtractResult",
    "VideoError",
    "extract_frames",
    "frames_to_video",
    "resolve_video_path",
]
