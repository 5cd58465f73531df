"""Preview engine: tiles, model pages, loss graph, window composition, debug page."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dfl.training import preview
from dfl.training.preview import (
    BACKGROUND_GREY,
    GRAPH_HEIGHT_PX,
    HEADER_LINE_PX,
    HEADER_LINES,
    LOSS_RANGES,
    MAX_PREVIEW_HEIGHT_PX,
    TEXT_GREY,
    compose_window,
    debug_page,
    grid,
    loss_graph,
    model_pages,
)

HEADER_PX = HEADER_LINE_PX * HEADER_LINES
BLUE = (255, 0, 0)
YELLOW = (0, 255, 255)


def batches(batch: int = 4, res: int = 96, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = {k: rng.random((batch, res, res, 3), np.float32) for k in ("s", "ss", "d", "dd", "sd")}
    masks = {k: np.ones((batch, res, res, 1), np.float32) for k in ("srcm", "dstm", "ddm", "sdm")}
    return images | masks


def pages_of(b: dict[str, np.ndarray], name: str = "Quick96", **kwargs) -> list:
    return model_pages(
        name, b["s"], b["ss"], b["d"], b["dd"], b["sd"], b["srcm"], b["dstm"], b["ddm"], b["sdm"],
        **kwargs,
    )  # fmt: skip


def tile(page: np.ndarray, row: int, col: int, res: int = 96) -> np.ndarray:
    return page[row * res : (row + 1) * res, col * res : (col + 1) * res]


def test_grid_mixes_float_uint8_and_masks():
    rows = [
        [np.full((4, 5, 3), 1.0, np.float32), np.full((4, 3, 1), 0.5, np.float32)],
        [np.full((2, 8, 3), 7, np.uint8)],
    ]
    image = grid(rows)
    assert image.dtype == np.uint8 and image.shape == (6, 8, 3)
    assert (image[:4, :5] == 255).all()
    assert (image[:4, 5:] == 128).all()  # 1 channel repeated to 3, 0.5 -> 128
    assert (image[4:] == 7).all()


def test_grid_clips_and_rejects_ragged_rows():
    image = grid([[np.array([[[-1.0, 2.0, np.nan]]], np.float32)]])
    assert image.tolist() == [[[0, 255, 0]]]
    with pytest.raises(ValueError, match="height"):
        grid([[np.zeros((4, 4, 3)), np.zeros((5, 4, 3))]])
    with pytest.raises(ValueError, match="width"):
        grid([[np.zeros((4, 4, 3))], [np.zeros((4, 5, 3))]])


def test_model_pages_quick96_layout():
    pages = pages_of(batches(batch=8))
    assert [name for name, _ in pages] == ["Quick96", "Quick96 masked"]
    for _, image in pages:
        assert image.shape == (384, 480, 3) and image.dtype == np.uint8  # 4 rows x 5 cols of 96
    b = batches(batch=8)
    expected = grid([[b["s"][2]]])
    assert np.array_equal(tile(pages[0][1], 2, 0), expected)  # row 2 column S
    assert np.array_equal(tile(pages[0][1], 1, 4), grid([[b["sd"][1]]]))  # row 1 column SD


def test_model_pages_masked_columns():
    b = batches()
    b["srcm"][:] = 0.0  # S*SRCM black
    b["ddm"][:] = 0.0  # DD*DDM black, SD*(DDM*SDM) black
    _, masked = pages_of(b)[1]
    assert (tile(masked, 0, 0) == 0).all()
    assert np.array_equal(tile(masked, 0, 1), grid([[b["ss"][0]]]))  # SS stays unmasked
    assert np.array_equal(tile(masked, 0, 2), grid([[b["d"][0]]]))  # DSTM is 1
    assert (tile(masked, 0, 3) == 0).all()
    assert (tile(masked, 0, 4) == 0).all()
    _, head_masked = pages_of(b, head=True)[1]  # head: SD*SDM only
    assert np.array_equal(tile(head_masked, 0, 4), grid([[b["sd"][0]]]))


def test_model_pages_accept_masks_without_a_channel_axis():
    b = batches()
    b["srcm"] = np.zeros((4, 96, 96), np.float32)
    _, masked = pages_of(b)[1]
    assert masked.shape == (384, 480, 3) and (tile(masked, 3, 0) == 0).all()


def test_model_pages_rows_follow_batch_and_resolution():
    assert pages_of(batches(batch=2))[0][1].shape == (192, 480, 3)
    big = pages_of(batches(batch=4, res=288), name="SAEHD")  # > 256 px: six 2-column pages
    assert [name for name, _ in big] == [
        "SAEHD src-src", "SAEHD dst-dst", "SAEHD pred",
        "SAEHD masked src-src", "SAEHD masked dst-dst", "SAEHD masked pred",
    ]  # fmt: skip
    assert {image.shape for _, image in big} == {(576, 576, 3)}  # min(4, 4, 800 // 288) = 2 rows


def test_loss_graph_shape_grid_and_series_colours():
    history = np.tile(np.array([[0.5, 0.25]], np.float32), (1000, 1))
    image = loss_graph(history, 480, 0)
    assert image.shape == (GRAPH_HEIGHT_PX, 480, 3) and image.dtype == np.uint8
    for row in (0, 19, 39, 59, 79, 99):
        assert (image[row] == TEXT_GREY).all()
    # scale = 2 x mean = 0.75; row = 99 - int(v / 0.75 * 99)
    assert tuple(image[99 - 66, 200]) == BLUE  # src 0.5
    assert tuple(image[99 - 33, 200]) == YELLOW  # dst 0.25
    assert tuple(image[50, 200]) == (BACKGROUND_GREY,) * 3
    assert not (image[80:99] == TEXT_GREY).all(axis=2).any()  # no text at iteration 0
    assert (loss_graph(history, 480, 1000)[80:99] == TEXT_GREY).all(axis=2).any()  # "Iter: 1000"


def test_loss_graph_columns_show_min_to_max():
    history = np.zeros((960, 1), np.float32)
    history[::2, 0] = 1.0  # every column covers 2 entries: 0 and 1 -> a bar from top to bottom
    history[:192] = 0.5  # the scale ignores the first 20 %: 2 x mean(last 80 %) = 1.0
    image = loss_graph(history, 480, 0)
    bar_rows = [row for row in range(1, 99) if row not in (19, 39, 59, 79)]  # grid lines on top
    assert (image[bar_rows, 300] == BLUE).all()
    assert tuple(image[50, 10]) == BLUE and tuple(image[40, 10]) != BLUE


def test_loss_graph_short_empty_and_bad_histories():
    short = loss_graph(np.linspace(1, 0.5, 10, dtype=np.float32)[:, None], 480, 10)
    assert (short[1:99] == BLUE).all(axis=2).any(axis=0).all()  # stretched: every column drawn
    assert loss_graph(np.zeros((0, 2), np.float32), 64, 0).shape == (100, 64, 3)
    assert loss_graph(np.zeros((5, 2), np.float32), 64, 5).shape == (100, 64, 3)
    bad = np.array([[np.nan, 1.0], [np.inf, 0.5]], np.float32)
    assert loss_graph(bad, 64, 2).shape == (100, 64, 3)


@pytest.mark.slow  # a speed figure, not behaviour: kept out of the default suite
def test_loss_graph_is_fast():
    rng = np.random.default_rng(0)
    history = rng.random((100_000, 2), dtype=np.float32)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        loss_graph(history, 480, 100_000)
        best = min(best, time.perf_counter() - start)
    assert best < 0.005, f"loss_graph took {best * 1000:.1f} ms"


def test_compose_window_layout_and_page_cycling():
    pages = pages_of(batches())
    history = np.random.default_rng(1).random((20_000, 2), dtype=np.float32)
    first = compose_window(pages, 0, history, 0, 20_000)
    assert first.shape == (HEADER_PX + GRAPH_HEIGHT_PX + 384, 480, 3)
    assert np.array_equal(first[HEADER_PX + GRAPH_HEIGHT_PX :], pages[0][1])
    second = compose_window(pages, 1, history, 0, 20_000)
    assert np.array_equal(second[HEADER_PX + GRAPH_HEIGHT_PX :], pages[1][1])
    assert not np.array_equal(
        first[2 * HEADER_LINE_PX : HEADER_PX], second[2 * HEADER_LINE_PX : HEADER_PX]
    )
    assert np.array_equal(compose_window(pages, 2, history, 0, 20_000), first)  # wraps
    graph = slice(HEADER_PX, HEADER_PX + GRAPH_HEIGHT_PX)
    last_5000 = compose_window(pages, 0, history, 1, 20_000)
    assert not np.array_equal(first[graph], last_5000[graph])
    assert np.array_equal(last_5000[graph], loss_graph(history[-LOSS_RANGES[1] :], 480, 20_000))
    assert np.array_equal(compose_window(pages, 0, history, len(LOSS_RANGES), 20_000), first)


def test_compose_window_limits_height_and_equalises_pages():
    tall = [("tall", np.full((1000, 500, 3), 0.5, np.float32)), ("small", np.zeros((100, 50, 3)))]
    window = compose_window(tall, 0, np.ones((10, 2), np.float32), 0, 10)
    assert window.shape == (HEADER_PX + GRAPH_HEIGHT_PX + MAX_PREVIEW_HEIGHT_PX, 400, 3)
    small = compose_window(tall, 1, None, 0, 10)  # no graph in debug mode
    assert small.shape == (HEADER_PX + MAX_PREVIEW_HEIGHT_PX, 400, 3)


def test_compose_window_before_the_first_preview():
    window = compose_window([], 0, np.zeros((0, 2), np.float32), 0, 0)
    assert window.shape == (HEADER_PX + GRAPH_HEIGHT_PX, preview.DEFAULT_WIDTH_PX, 3)


def test_debug_page_stacks_every_image_output():
    outputs = {
        "warped_src": np.zeros((4, 32, 32, 3), np.float32),
        "mask_src": np.ones((4, 16, 16, 1), np.float32),
        "labels": np.arange(4),  # not an image: left out
    }
    page = debug_page(outputs)
    assert page.shape == (2 * 32, 4 * 32, 3)
    assert debug_page([np.zeros((2, 8, 8, 3))]).shape == (8, 16, 3)
    with pytest.raises(ValueError):
        debug_page({"labels": np.arange(4)})
