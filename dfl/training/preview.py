"""Preview pages, header and loss graph as uint8 BGR images (numpy and cv2 drawing, no windows)."""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

MAX_PREVIEW_HEIGHT_PX = 800  # a page taller than this is scaled down (DFL)
HEADER_LINE_PX = 15
HEADER_LINES = 3
GRAPH_HEIGHT_PX = 100
GRAPH_GRID_LINES = 6  # horizontal lines at rows int(i * (height - 1) / 5)
GRAPH_RECENT_FRACTION = 0.8  # the scale is 2x the mean of the last 80 % of the shown history
GRAPH_SCALE_OF_MEAN = 2.0
LOSS_RANGES = (0, 5000, 10000, 50000, 100000)  # iterations shown by the graph; 0 = all
PREVIEW_ROWS = 4
SPLIT_PAGES_ABOVE_PX = 256  # SAEHD above this resolution uses six 2-column pages
DEFAULT_WIDTH_PX = 480  # window width before the first preview arrives
DEBUG_PAGE_NAME = "debug, press update for new"
DEBUG_MAX_SAMPLES = 8  # tiles per generator output in the debug page

BACKGROUND_GREY = 26  # 0.1 grey
TEXT_GREY = 204  # 0.8 grey
FONT = cv2.FONT_HERSHEY_SIMPLEX
HEADER_FONT_SCALE = 0.4
GRAPH_FONT_SCALE = 0.45
TEXT_MARGIN_PX = 4

HEADER_LINE_1 = "[s]:save [b]:backup [enter]:exit"  # DFL's wording; exit saves first
HEADER_LINE_2 = "[p]:update [space]:next preview [l]:change history range"

Page = tuple[str, np.ndarray]


def to_uint8_bgr(image: np.ndarray) -> np.ndarray:
    """One tile as uint8 BGR (HxWx3): floats are [0, 1], clipped; one channel is repeated."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"expected an HxW, HxWx1 or HxWx3 image, got shape {image.shape}")
    if image.dtype != np.uint8:
        scaled = np.nan_to_num(image.astype(np.float32) * 255.0 + 0.5, nan=0.0)
        image = np.clip(scaled, 0.0, 255.0).astype(np.uint8)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def grid(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """Tiles (float [0, 1] or uint8, 1 or 3 channels) laid out row by row as one uint8 BGR image."""
    if not rows or not all(rows):
        raise ValueError("grid needs at least one row and one tile per row")
    lines = []
    for r, row in enumerate(rows):
        tiles = [to_uint8_bgr(t) for t in row]
        heights = {t.shape[0] for t in tiles}
        if len(heights) != 1:
            raise ValueError(f"grid row {r}: tiles differ in height {sorted(heights)}")
        lines.append(np.concatenate(tiles, axis=1))
    widths = {line.shape[1] for line in lines}
    if len(widths) != 1:
        raise ValueError(f"grid rows differ in width {sorted(widths)}")
    return np.concatenate(lines, axis=0)


def _rows(n_wanted: int, batch: int, resolution: int) -> int:
    return max(1, min(n_wanted, batch, MAX_PREVIEW_HEIGHT_PX // max(1, resolution)))


def model_pages(
    name: str,
    target_src: np.ndarray,
    ss: np.ndarray,
    target_dst: np.ndarray,
    dd: np.ndarray,
    sd: np.ndarray,
    mask_src: np.ndarray,
    mask_dst: np.ndarray,
    ddm: np.ndarray,
    sdm: np.ndarray,
    rows: int = PREVIEW_ROWS,
    head: bool = False,
) -> list[Page]:
    """SAEHD / Quick96 preview pages from batches (B, R, R, C) of float [0, 1] BGR images and masks.

    S = src target, SS = src->src, D = dst target, DD = dst->dst, SD = swap (dst through the src
    decoder); SRCM/DSTM = true masks, DDM/SDM = predicted dst/swap masks. The masked swap is
    SD*(DDM*SDM), or SD*SDM when ``head`` is set (SAEHD's head face type). Rows = min(rows, B,
    800 // R). Above 256 px the layout becomes six 2-column pages as DFL's SAEHD does.
    """
    arrays = [target_src, ss, target_dst, dd, sd, mask_src, mask_dst, ddm, sdm]
    arrays = [np.clip(np.asarray(a, dtype=np.float32), 0.0, 1.0) for a in arrays]
    arrays = [a[..., None] if a.ndim == 3 else a for a in arrays]  # (B, R, R) masks
    s, ss, d, dd, sd, srcm, dstm, ddm, sdm = arrays
    resolution = s.shape[1]
    n = _rows(rows, min(len(a) for a in arrays), resolution)
    swap_mask = sdm if head else ddm * sdm
    s_m, d_m, dd_m, sd_m = s * srcm, d * dstm, dd * ddm, sd * swap_mask

    def page(*columns: np.ndarray) -> np.ndarray:
        return grid([[col[i] for col in columns] for i in range(n)])

    if resolution <= SPLIT_PAGES_ABOVE_PX:
        return [(name, page(s, ss, d, dd, sd)), (f"{name} masked", page(s_m, ss, d_m, dd_m, sd_m))]
    return [
        (f"{name} src-src", page(s, ss)),
        (f"{name} dst-dst", page(d, dd)),
        (f"{name} pred", page(d, sd)),
        (f"{name} masked src-src", page(s_m, ss)),
        (f"{name} masked dst-dst", page(d_m, dd_m)),
        (f"{name} masked pred", page(d_m, sd_m)),
    ]


def autoencoder_pages(
    name: str, model: Any, inputs: Mapping[str, np.ndarray], head: bool = False
) -> list[Page]:
    """The pages of a df/liae autoencoder (`model.predict_preview`), run on the unwarped targets."""
    target_src, target_dst = inputs["target_src"], inputs["target_dst"]
    rows = _rows(PREVIEW_ROWS, target_src.shape[0], target_src.shape[1])
    target_src, target_dst = target_src[:rows], target_dst[:rows]
    p = model.predict_preview(target_src, target_dst)
    return model_pages(
        name,
        target_src,
        p["ss"],
        target_dst,
        p["dd"],
        p["sd"],
        inputs["mask_src"][:rows],
        inputs["mask_dst"][:rows],
        p["ddm"],
        p["sdm"],
        rows=rows,
        head=head,
    )


AMP_MORPH_VALUES = (0.25, 0.5, 0.65, 0.75, 1.0)  # the swaps of the morph-list pages


def amp_pages(
    name: str,
    model: Any,
    inputs: Mapping[str, np.ndarray],
    morph_mask: np.ndarray,
    index: int | None = None,
    rng: np.random.Generator | None = None,
) -> list[Page]:
    """AMP's three pages for ONE sample, 2 rows x 3 columns each (docs/dfl-trainer.md §6):
    `<name> morph 1.0` (S, D, DD*DDM / SS, DD, SD@1), `<name> morph list` (DD, SD@.25, SD@.5 /
    SD@.65, SD@.75, SD@1) and `<name> morph list masked` (each SD@v times DDM*SDM@v).

    The sample is row `index`, or a random one of the rows a preview would show (`rng`). SS is
    src -> src with `morph_mask` (1, inter_dims) mixing the code as in training.
    `model` needs predict_mixed(images, morph_mask) and predict_morph(images, values).
    """
    target_src, target_dst = inputs["target_src"], inputs["target_dst"]
    if index is None:
        rows = _rows(PREVIEW_ROWS, target_src.shape[0], target_src.shape[1])
        index = int((rng or np.random.default_rng()).integers(rows))
    s = np.asarray(target_src[index : index + 1], dtype=np.float32)
    d = np.asarray(target_dst[index : index + 1], dtype=np.float32)
    ss, _ = model.predict_mixed(s, morph_mask)
    (dd, ddm), *swaps = model.predict_morph(d, (0.0, *AMP_MORPH_VALUES))
    sd = [image[0] for image, _ in swaps]
    sd_masked = [image[0] * ddm[0] * mask[0] for image, mask in swaps]
    s, d, ss, dd, ddm = s[0], d[0], ss[0], dd[0], ddm[0]
    return [
        (f"{name} morph 1.0", grid([[s, d, dd * ddm], [ss, dd, sd[-1]]])),
        (f"{name} morph list", grid([[dd, sd[0], sd[1]], [sd[2], sd[3], sd[4]]])),
        (
            f"{name} morph list masked",
            grid([[dd, sd_masked[0], sd_masked[1]], [sd_masked[2], sd_masked[3], sd_masked[4]]]),
        ),
    ]


def series_colour(p: int, count: int) -> tuple[int, int, int]:
    """Colour of loss series p of count as DFL shows it: HSV hue p/count, its RGB written as BGR."""
    r, g, b = colorsys.hsv_to_rgb(p / max(1, count), 1.0, 1.0)
    return (
        round(r * 255),
        round(g * 255),
        round(b * 255),
    )  # DFL's channel swap: src blue, dst yellow


def _column_ranges(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel column min and max of (N, k) values; short histories are stretched."""
    n = len(values)
    starts = (np.arange(width, dtype=np.int64) * n) // width
    # reduceat gives values[start] alone where a start repeats (history shorter than the width)
    return np.minimum.reduceat(values, starts, axis=0), np.maximum.reduceat(values, starts, axis=0)


def loss_graph(
    history: np.ndarray, width: int, iteration: int, height: int = GRAPH_HEIGHT_PX
) -> np.ndarray:
    """The loss-history strip (height x width uint8 BGR): one min-max bar per column and series."""
    if width < 1 or height < 2:
        raise ValueError(f"loss graph needs width >= 1 and height >= 2, got {width}x{height}")
    image = np.full((height, width, 3), BACKGROUND_GREY, np.uint8)
    values = np.asarray(history, dtype=np.float32)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim == 2 and len(values) and values.shape[1]:
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        scale = GRAPH_SCALE_OF_MEAN * float(values[len(values) // 5 :].mean())
        if not np.isfinite(scale) or scale <= 0.0:
            scale = 1.0
        lows, highs = _column_ranges(values, width)
        bottom = height - 1
        # row 0 is the top: value 0 sits on the bottom row, `scale` on the top one
        top_rows = bottom - np.clip(highs / scale * bottom, 0, bottom).astype(np.int32)
        low_rows = bottom - np.clip(lows / scale * bottom, 0, bottom).astype(np.int32)
        y = np.arange(height, dtype=np.int32)[:, None]
        count = values.shape[1]
        series = np.zeros((height, width), np.intp)  # 0 = background, p + 1 = series p
        for p in range(count):  # later series overdraw earlier ones
            bar = (y >= top_rows[None, :, p]) & (y <= low_rows[None, :, p])
            series = np.where(bar, p + 1, series)
        palette = [image[0, 0]] + [series_colour(p, count) for p in range(count)]
        image = np.asarray(palette, np.uint8)[series]
    for i in range(GRAPH_GRID_LINES):
        image[int(i * (height - 1) / (GRAPH_GRID_LINES - 1)), :] = TEXT_GREY
    if iteration:
        band_bottom = int((GRAPH_GRID_LINES - 1) * (height - 1) / (GRAPH_GRID_LINES - 1))
        band_top = int((GRAPH_GRID_LINES - 2) * (height - 1) / (GRAPH_GRID_LINES - 1))
        _put_text(image, f"Iter: {iteration}", band_top, band_bottom, GRAPH_FONT_SCALE)
    return image


def _put_text(image: np.ndarray, text: str, top: int, bottom: int, scale: float) -> None:
    """Write text in rows [top, bottom), shrunk to fit the width, vertically centred."""
    width = image.shape[1] - 2 * TEXT_MARGIN_PX
    (w, h), _ = cv2.getTextSize(text, FONT, scale, 1)
    if w > width > 0:
        scale *= width / w
        (w, h), _ = cv2.getTextSize(text, FONT, scale, 1)
    baseline_y = top + (bottom - top + h) // 2
    cv2.putText(
        image, text, (TEXT_MARGIN_PX, baseline_y), FONT, scale, (TEXT_GREY,) * 3, 1, cv2.LINE_AA
    )


def header(width: int, lines: Sequence[str]) -> np.ndarray:
    """A band of text lines, HEADER_LINE_PX each, grey on dark grey."""
    image = np.full((HEADER_LINE_PX * len(lines), width, 3), BACKGROUND_GREY, np.uint8)
    for i, text in enumerate(lines):
        _put_text(image, text, i * HEADER_LINE_PX, (i + 1) * HEADER_LINE_PX, HEADER_FONT_SCALE)
    return image


def page_size(pages: Sequence[Page]) -> tuple[int, int]:
    """The common (height, width) all pages are shown at: the largest, scaled to <= 800 px high."""
    h = max(image.shape[0] for _, image in pages)
    w = max(image.shape[1] for _, image in pages)
    if h > MAX_PREVIEW_HEIGHT_PX:
        w = max(1, round(w * MAX_PREVIEW_HEIGHT_PX / h))
        h = MAX_PREVIEW_HEIGHT_PX
    return h, w


def range_label(loss_range_index: int) -> str:
    """What the graph shows at this range index: 'all' or 'last 5000'."""
    n = LOSS_RANGES[loss_range_index % len(LOSS_RANGES)]
    return "all" if n == 0 else f"last {n}"


def compose_window(
    pages: Sequence[Page],
    page_index: int,
    history: np.ndarray | None,
    loss_range_index: int,
    iteration: int,
) -> np.ndarray:
    """The whole preview window: 3 header lines, the loss graph of the chosen range, one page.

    Indexes wrap (page_index % len(pages), loss_range_index % len(LOSS_RANGES)). With no pages yet
    a window of DEFAULT_WIDTH_PX with an empty page is drawn; history None leaves the graph out
    (debug mode).
    """
    if pages:
        height, width = page_size(pages)
        k = page_index % len(pages)
        name, image = pages[k]
        image = to_uint8_bgr(image)
        if image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        title = f'Preview: "{name}" [{k + 1}/{len(pages)}]'
    else:
        width, image, title = DEFAULT_WIDTH_PX, None, "Preview: waiting for the first one"
    parts = []
    if history is not None:
        title += f"  history: {range_label(loss_range_index)}"
        shown = np.asarray(history)
        last = LOSS_RANGES[loss_range_index % len(LOSS_RANGES)]
        if last:
            shown = shown[-last:]
        parts.append(loss_graph(shown, width, iteration))
    parts.insert(0, header(width, (HEADER_LINE_1, HEADER_LINE_2, title)))
    if image is not None:
        parts.append(image)
    return np.concatenate(parts, axis=0)


def debug_page(batch_arrays: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> np.ndarray:
    """All outputs of one batch (each (B, H, W, C)) as a grid: a row per output, a tile per sample.

    Tiles are resized to the largest tile size; with a mapping each row is labelled with its key.
    """
    if isinstance(batch_arrays, Mapping):
        names, arrays = list(batch_arrays.keys()), list(batch_arrays.values())
    else:
        names, arrays = [""] * len(batch_arrays), list(batch_arrays)
    named = []
    for name, a in zip(names, arrays, strict=True):
        a = np.asarray(a)
        if a.ndim == 3 and a.shape[-1] in (1, 3):
            a = a[None]
        if a.ndim == 4 and a.shape[-1] in (1, 3):  # other outputs (indices, codes) are not images
            named.append((name, a))
    if not named:
        raise ValueError("debug_page needs at least one (B, H, W, 1 or 3) array")
    h = max(a.shape[1] for _, a in named)
    w = max(a.shape[2] for _, a in named)
    columns = min(DEBUG_MAX_SAMPLES, max(len(a) for _, a in named))
    blank = np.zeros((h, w, 3), np.uint8)
    rows = []
    for name, batch in named:
        tiles = []
        for i in range(columns):
            if i >= len(batch):
                tiles.append(blank)
                continue
            tile = to_uint8_bgr(batch[i])
            if tile.shape[:2] != (h, w):
                tile = cv2.resize(tile, (w, h), interpolation=cv2.INTER_NEAREST)
            tiles.append(tile)
        if name:
            tiles[0] = tiles[0].copy()
            cv2.putText(
                tiles[0],
                name,
                (TEXT_MARGIN_PX, HEADER_LINE_PX),
                FONT,
                HEADER_FONT_SCALE,
                (0, 255, 255),
                1,
                cv2.LINE_AA,
            )
        rows.append(tiles)
    return grid(rows)
