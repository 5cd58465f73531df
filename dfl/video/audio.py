"""The reference video's sound, re-encoded into the output video (docs/video.md)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from dfl.video.common import VideoError

AUDIO_CODEC = "aac"
AUDIO_BITRATE = 192_000  # bits per second, as DFL's "merged to mp4"
AUDIO_RATE_HZ = 48_000  # as DFL's "merged to mp4"
MAX_CHANNELS = 2  # more channels are mixed down to stereo
AAC_FRAME_SAMPLES = 1024  # FFmpeg's AAC encoder takes exactly this many samples per frame


def audio_layout(video: Path) -> str | None:
    """The channel layout the sound of `video` gets ("mono" or "stereo"); None without sound."""
    try:
        with av.open(str(video)) as container:
            if not container.streams.audio:
                return None
            channels = container.streams.audio[0].codec_context.channels or 1
    except (av.error.FFmpegError, OSError) as e:
        raise VideoError(f"cannot read video {video}: {e}") from e
    return "mono" if min(MAX_CHANNELS, channels) == 1 else "stereo"


def add_audio_stream(
    output: av.container.OutputContainer, layout: str
) -> av.audio.stream.AudioStream:
    """The AAC stream the sound goes to; add it before the first packet is written (the
    codec opens then, and its layout cannot change after)."""
    stream = output.add_stream(AUDIO_CODEC, rate=AUDIO_RATE_HZ, layout=layout)
    stream.bit_rate = AUDIO_BITRATE
    return stream


def copy_audio(
    reference: Path,
    output: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    seconds: Fraction,
) -> int:
    """Decode the first audio stream of `reference`, re-encode it into `stream`, cut to
    `seconds` (the video's length). Returns the number of samples written."""
    limit = int(seconds * AUDIO_RATE_HZ)
    with av.open(str(reference)) as source:
        audio = source.streams.audio[0]
        layout = stream.layout.name
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=AUDIO_RATE_HZ)
        fifo = av.AudioFifo()
        written = 0

        def drain(final: bool) -> None:
            nonlocal written
            while written < limit:
                wanted = min(AAC_FRAME_SAMPLES, limit - written)
                if fifo.samples < wanted and not (final and fifo.samples):
                    return
                frame = fifo.read(min(wanted, fifo.samples))
                frame.pts, frame.time_base = written, Fraction(1, AUDIO_RATE_HZ)
                written += frame.samples
                for packet in stream.encode(frame):
                    output.mux(packet)

        for decoded in source.decode(audio):
            decoded.pts = None  # the resampler and the FIFO count samples themselves
            for frame in resampler.resample(decoded):
                fifo.write(frame)
            drain(final=False)
            if written >= limit:
                break
        for frame in resampler.resample(None):
            fifo.write(frame)
        drain(final=True)
        for packet in stream.encode(None):
            output.mux(packet)
    return written
