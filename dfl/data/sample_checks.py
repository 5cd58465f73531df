"""Which loaded faces a model can train on: faces too small to be worth blowing up to the model's
resolution are set aside with a note, and faces stored as a narrower face type are refused."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from dfl.data.faceset import SKIPPED_EXAMPLES, FaceSample, FacesetError
from dfl.data.landmarks import FACE_TYPE_RANK

# Faces are trained only when both sides are at least MIN_FACE_PX and 1/MIN_FACE_FRACTION of the
# model's resolution: smaller ones (a 1x1 "face") hold no face worth blowing up.
MIN_FACE_PX = 32
MIN_FACE_FRACTION = 4


def min_face_side(resolution: int) -> int:
    """The smallest stored face side (px) worth training a `resolution` model on."""
    return max(MIN_FACE_PX, resolution // MIN_FACE_FRACTION)


def split_tiny(
    samples: Iterable[FaceSample], resolution: int
) -> tuple[list[FaceSample], list[FaceSample]]:
    """(kept, tiny): faces with a side below min_face_side(resolution) are tiny; blown up to
    the model's size they are only blur, which DFL would train on without a word."""
    least = min_face_side(resolution)
    kept: list[FaceSample] = []
    tiny: list[FaceSample] = []
    for sample in samples:
        (tiny if min(sample.shape) < least else kept).append(sample)
    return kept, tiny


def tiny_note(tiny: list[FaceSample], resolution: int, side: str) -> str:
    """The warning for faces split_tiny set aside: how many, the first few names, the limit."""
    names = ", ".join(sample.path.name for sample in tiny[:SKIPPED_EXAMPLES])
    more = f" and {len(tiny) - SKIPPED_EXAMPLES} more" if len(tiny) > SKIPPED_EXAMPLES else ""
    faces = "face is" if len(tiny) == 1 else "faces are"
    return (
        f"{side}: {len(tiny)} {faces} smaller than {min_face_side(resolution)} px on a side and "
        f"skipped ({names}{more}); a {resolution} px model needs faces at least that big"
    )


def check_face_type(samples: Iterable[FaceSample], face_type: str, side: str = "") -> None:
    """Raise FacesetError when faces are stored as a narrower face type than ``face_type``.

    A face can be cropped to its own face type or a narrower one (DFL's order: half_face <
    midfull_face < full_face < full_face_no_align < whole_face < head < head_no_align), never
    to a wider one: a 'full_face' faceset cannot train a 'whole_face' or 'head' model. Plain
    images (no face type) are always accepted.
    """
    need = FACE_TYPE_RANK[face_type]
    narrow: Counter[str] = Counter()
    example: dict[str, Path] = {}
    for sample in samples:
        stored = sample.face_type
        if stored is not None and FACE_TYPE_RANK.get(stored, need) < need:
            narrow[stored] += 1
            example.setdefault(stored, sample.path)
    if not narrow:
        return
    whose = f"the {side} faceset" if side else "the faceset"
    parts = [
        f"{n} {'face is' if n == 1 else 'faces are'} '{t}' (e.g. {example[t]})"
        for t, n in narrow.most_common()
    ]
    types = sorted(narrow, key=FACE_TYPE_RANK.__getitem__)
    what = " and ".join(f"'{t}'" for t in types)
    crops = "is a narrower crop" if len(types) == 1 else "are narrower crops"
    raise FacesetError(
        f"{whose} cannot train a '{face_type}' model: {'; '.join(parts)}. {what} {crops} than "
        f"'{face_type}', and a face can only be cropped to its own face type or a narrower one. "
        f"Extract the faces again as '{face_type}' (or wider), or choose a model face type no "
        f"wider than '{types[0]}'."
    )


def usable_samples(
    samples: Sequence[FaceSample], resolution: int, side: str
) -> tuple[list[FaceSample], list[str]]:
    """(the samples big enough to train on, notes for the user); the tiny ones are skipped with a
    note. Raises FacesetError when every face is tiny."""
    kept, tiny = split_tiny(samples, resolution)
    if tiny and not kept:
        raise FacesetError(
            f"every {side} face is smaller than {min_face_side(resolution)} px on a side "
            f"(e.g. {tiny[0].path}): too small for a {resolution} px model. Use the "
            "extractor's aligned faces, or a smaller model resolution."
        )
    return kept, [tiny_note(tiny, resolution, side)] if tiny else []
