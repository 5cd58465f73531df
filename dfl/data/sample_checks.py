"""Which loaded faces a model can train on: faces too small to be worth blowing up to the model's
resolution are set aside with a note; faces stored as a narrower face type than the model's are
trained on as DFL does, with one warning that counts them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

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


def narrower_faces(samples: Iterable[FaceSample], face_type: str) -> Counter[str]:
    """How many faces of each stored face type are narrower crops than ``face_type`` (DFL's
    order: half_face < midfull_face < full_face < full_face_no_align < whole_face < head <
    head_no_align). Plain images (no face type) are never counted."""
    need = FACE_TYPE_RANK[face_type]
    return Counter(
        sample.face_type
        for sample in samples
        if sample.face_type is not None and FACE_TYPE_RANK.get(sample.face_type, need) < need
    )


def face_type_note(face_type: str, sides: Mapping[str, Sequence[FaceSample]]) -> str | None:
    """The one warning for faces stored narrower than the model's ``face_type``, with the counts
    per side and stored type (None when there are none).

    Such faces are trained on as DFL trains on them (docs/facesets.md §2): the crop is cut around
    the landmarks at the model's face type, so it reaches past the stored image, where the face
    image repeats its edge pixels and the masks are black.
    """
    parts = []
    for side, samples in sides.items():
        counts = narrower_faces(samples, face_type)
        if counts:
            kinds = ", ".join(f"{n} '{stored}'" for stored, n in counts.most_common())
            parts.append(f"{side} {sum(counts.values())} of {len(samples)} ({kinds})")
    if not parts:
        return None
    return (
        f"faces stored narrower than the model's '{face_type}': {'; '.join(parts)}. They are "
        f"cropped to '{face_type}' as DeepFaceLab does, so the crop reaches past the stored "
        "image: there the face repeats its edge pixels and the mask is black. Extract the faces "
        f"as '{face_type}' (or wider) for a clean result."
    )


def face_type_notes(sides: Sequence[tuple[str, Sequence[FaceSample], str]]) -> list[str]:
    """face_type_note for (side, samples, model face type) triples: one note per face type (both
    sides share it in every model)."""
    notes = []
    for face_type in dict.fromkeys(kind for _, _, kind in sides):
        chosen = {side: samples for side, samples, kind in sides if kind == face_type}
        note = face_type_note(face_type, chosen)
        if note is not None:
            notes.append(note)
    return notes


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
