"""Importing DeepFaceLab models (dfl.interop.deepfacelab): every weight of the three DFL-trained
fixtures lands in the project's layers, options, iteration and loss history carry over, the imported
model trains, and hostile, truncated or mismatched files are refused with nothing written."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from dfl import backend

backend.select(None)

import keras  # noqa: E402

from dfl.data.faceset import load_faceset  # noqa: E402
from dfl.interop.deepfacelab import DflFileRefusedError, DflModelError, find_dfl_model  # noqa: E402
from dfl.interop.deepfacelab.importer import DflImportError, import_dfl_model  # noqa: E402
from dfl.interop.deepfacelab.mapping import dfl_weight_name  # noqa: E402
from dfl.interop.deepfacelab.reader import read_data, read_weights  # noqa: E402
from dfl.models.registry import load as load_model  # noqa: E402
from dfl.store.model_store import ModelStore  # noqa: E402
from dfl.training.trainer import Trainer, TrainingSetup  # noqa: E402

DATA = Path(__file__).parent / "data"
FIXTURES = DATA / "dfl-models"
FACESET = DATA / "dfl-faceset"
# fixture folder -> (model class, networks DFL saved)
CASES = {
    "tiny-saehd-df-ud-64": ("SAEHD", ("encoder", "inter", "decoder_src", "decoder_dst")),
    "tiny-saehd-liae-ud-64": ("SAEHD", ("encoder", "inter_AB", "inter_B", "decoder")),
    "tiny-amp-64": ("AMP", ("encoder", "inter_src", "inter_dst", "decoder")),
}
DFL_ITERATION = 9  # each fixture was trained for 9 iterations


def _hashes(folder: Path) -> dict[str, str]:
    """Every entry of a folder: a file's sha256, or "folder"."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        for p in sorted(folder.iterdir())
    }


def _copy(case: str, tmp_path: Path) -> Path:
    folder = tmp_path / case
    shutil.copytree(FIXTURES / case, folder)
    return folder


def _files(folder: Path, model_class: str = "SAEHD"):
    files = find_dfl_model(folder, "tiny", model_class)
    assert files is not None
    return files


def _rewrite(path: Path, change) -> None:
    """Rewrite a DFL weight file with `change(dict)` applied (tests only: pickle is fine here)."""
    weights = read_weights(path)
    change(weights)
    path.write_bytes(pickle.dumps(weights, protocol=4))


def _only_dfl_files(folder: Path, before: dict[str, str]) -> None:
    """Nothing was written (no model folder) and DFL's files are unchanged."""
    assert _hashes(folder) == before


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, tuple[Path, object, dict[str, str]]]:
    """Each fixture imported once: (DFL folder, ImportReport, hashes of DFL's files before)."""
    out = {}
    for case, (model_class, _) in CASES.items():
        folder = _copy(case, tmp_path_factory.mktemp("dfl"))
        before = _hashes(folder)
        report = import_dfl_model(_files(folder, model_class), folder)
        out[case] = (folder, report, before)
    return out


# ----------------------------------------------------------------------------- the fixtures
@pytest.mark.parametrize("case", list(CASES))
def test_every_weight_is_mapped_and_options_carry_over(imported, case: str) -> None:
    folder, report, before = imported[case]
    model_class, networks = CASES[case]
    # DFL's files are untouched; the project model sits beside them
    assert {k: v for k, v in _hashes(folder).items() if k in before} == before
    assert report.folder == folder / f"tiny_{model_class}"
    assert report.written_bytes > 0 and report.seconds > 0
    loaded = ModelStore(report.folder).load()
    assert loaded.state.model_type == model_class
    assert loaded.state.iteration == DFL_ITERATION
    data = read_data(_files(folder, model_class).data_path)
    options = loaded.state.options
    for key in ("resolution", "face_type", "ae_dims", "e_dims", "d_dims", "d_mask_dims"):
        assert options[key] == data.options[key]
        assert type(options[key]) in (int, str)  # numpy scalars became Python values
    if model_class == "SAEHD":
        assert options["archi"] == data.options["archi"]
    for network in networks:
        dfl = read_weights(_files(folder, model_class).part_path(network))
        ours = loaded.arrays(network)
        assert len(ours) == len(dfl)  # none missing, none left over
        by_dfl_name = {
            dfl_weight_name(key.split("/", 1)[1], network, load_model(model_class)) + ":0": value
            for key, value in ours.items()
        }
        assert set(by_dfl_name) == set(dfl)
        for name, value in dfl.items():
            np.testing.assert_array_equal(by_dfl_name[name], value, err_msg=f"{network} {name}")
    rows = ModelStore(report.folder).open_loss_history(2, loaded.loss_rows).tail()
    np.testing.assert_allclose(rows, data.loss_history)
    assert loaded.has("preview_samples")
    preview = loaded.arrays("preview_samples")
    assert preview["target_src"].shape == (4, 64, 64, 3)  # AMP's NCHW samples became NHWC


# The imported liae-ud model trains on through `dfl train` in tests/test_dflmodel_ui.py.
TRAINED_BY_THE_CLI_TEST = "tiny-saehd-liae-ud-64"


@pytest.mark.parametrize("case", [c for c in CASES if c != TRAINED_BY_THE_CLI_TEST])
def test_imported_model_trains_one_step(imported, case: str) -> None:
    _, report, _ = imported[case]
    loaded = ModelStore(report.folder).load()
    spec = load_model(loaded.state.model_type)
    setup = TrainingSetup(
        spec=spec,
        name="tiny",
        store=ModelStore(report.folder),
        options=dict(loaded.state.options, batch_size=2),
        device="cpu",
        backend=keras.backend.backend(),
        src=load_faceset(FACESET / "src").samples,
        dst=load_faceset(FACESET / "dst").samples,
        loaded=loaded,
        seed=1,
        workers=1,
    )
    trainer = Trainer(setup)
    try:
        assert trainer.iteration == DFL_ITERATION
        _, losses = trainer.train_one()
        assert all(np.isfinite(losses))
        assert trainer.iteration == DFL_ITERATION + 1
    finally:
        trainer.close()


# ------------------------------------------------------------ forward pass by hand (df-ud)
def _conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """DFL's conv: zero padding k//2 on every side, then a VALID conv (docs/networks.md §1)."""
    k = kernel.shape[0]
    p = k // 2
    x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]  # (B, Ho, Wo, C, k, k)
    return np.einsum("bhwcij,ijco->bhwo", windows, kernel, optimize=True) + bias


def _lrelu(x: np.ndarray, slope: float) -> np.ndarray:
    return np.where(x >= 0, x, x * slope)


def _depth_to_space(x: np.ndarray) -> np.ndarray:
    """TF's DCR order: channel (dy·2 + dx)·oc + c goes to pixel (2h + dy, 2w + dx)."""
    b, h, w, c = x.shape
    oc = c // 4
    out = np.zeros((b, 2 * h, 2 * w, oc), x.dtype)
    for dy in range(2):
        for dx in range(2):
            start = (dy * 2 + dx) * oc
            out[:, dy::2, dx::2, :] = x[..., start : start + oc]
    return out


def test_df_networks_match_a_hand_computation(imported) -> None:
    folder, report, _ = imported["tiny-saehd-df-ud-64"]
    files = _files(folder)
    enc = read_weights(files.part_path("encoder"))
    inter = read_weights(files.part_path("inter"))
    loaded = ModelStore(report.folder).load()
    model = load_model("SAEHD").build(loaded.state.options)
    for name, network in model.networks.items():
        arrays = loaded.arrays(name)
        for variable, key in zip(network.weights, sorted(arrays), strict=True):
            variable.assign(arrays[key])
    image = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)

    x = image.astype(np.float64)
    for i in range(4):
        w = enc[f"down1/downs_{i}/conv1/weight:0"]
        b = enc[f"down1/downs_{i}/conv1/bias:0"]
        x = _lrelu(_conv(x, w, b, 2), 0.1)
    flat = x.transpose(0, 3, 1, 2).reshape(2, -1)  # DFL flattens in (C, H, W) order
    flat = flat / np.sqrt(np.mean(flat**2, axis=-1, keepdims=True) + 1e-6)  # 'u': pixel norm
    ours = keras.ops.convert_to_numpy(model.encoder(image))
    np.testing.assert_allclose(ours, flat, rtol=1e-4, atol=1e-5)

    y = flat @ inter["dense1/weight:0"] + inter["dense1/bias:0"]
    y = y @ inter["dense2/weight:0"] + inter["dense2/bias:0"]
    y = y.reshape(2, 32, 2, 2).transpose(0, 2, 3, 1)  # (C, H, W) -> NHWC
    y = _lrelu(_conv(y, inter["upscale1/conv1/weight:0"], inter["upscale1/conv1/bias:0"], 1), 0.1)
    y = _depth_to_space(y)
    ours = keras.ops.convert_to_numpy(model.inter(model.encoder(image)))
    np.testing.assert_allclose(ours, y, rtol=1e-4, atol=1e-5)

    # decoder_src ('ud'): Upscale + ResidualBlock x3, the 'd' head (1x1 then three 3x3 convs,
    # concatenated, pixel-shuffled), and the mask branch with one more Upscale
    dec = read_weights(files.part_path("decoder_src"))

    def conv(x: np.ndarray, layer: str) -> np.ndarray:
        return _conv(x, dec[f"{layer}/weight:0"], dec[f"{layer}/bias:0"], 1)

    x = y
    for i in range(3):
        x = _depth_to_space(_lrelu(conv(x, f"upscale{i}/conv1"), 0.1))
        r = conv(_lrelu(conv(x, f"res{i}/conv1"), 0.2), f"res{i}/conv2")
        x = _lrelu(x + r, 0.2)
    heads = [conv(x, "out_conv"), *(conv(x, f"out_conv{i}") for i in (1, 2, 3))]
    rgb = 1.0 / (1.0 + np.exp(-_depth_to_space(np.concatenate(heads, axis=-1))))
    m = y
    for i in range(4):
        m = _depth_to_space(_lrelu(conv(m, f"upscalem{i}/conv1"), 0.1))
    mask = 1.0 / (1.0 + np.exp(-conv(m, "out_convm")))
    ours_rgb, ours_mask = (keras.ops.convert_to_numpy(t) for t in model.decoder_src(y))
    np.testing.assert_allclose(ours_rgb, rgb, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours_mask, mask, rtol=1e-4, atol=1e-5)

    # Exported equals imported: the .dfm of the imported model computes DFL's df export graph
    # (swap = decoder_src on the code, face mask = decoder_dst's mask), here from DFL's files.
    dst = read_weights(files.part_path("decoder_dst"))
    m = y
    for i in range(4):
        w, b = dst[f"upscalem{i}/conv1/weight:0"], dst[f"upscalem{i}/conv1/bias:0"]
        m = _depth_to_space(_lrelu(_conv(m, w, b, 1), 0.1))
    face_mask = 1.0 / (
        1.0 + np.exp(-_conv(m, dst["out_convm/weight:0"], dst["out_convm/bias:0"], 1))
    )
    from dfl.interop.deepfacelive.dfm import export_saved_model
    from dfl.interop.deepfacelive.verify import check_inputs, open_session, run
    from dfl.models.loading import load_saved_model

    result = export_saved_model(load_saved_model(report.folder), report.folder / "tiny.dfm")
    dfm = open_session(result.path)
    outputs = run(dfm, check_inputs(dfm.get_inputs()), image, morph=1.0)
    for got, expected in zip(outputs, (face_mask, rgb, mask), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------- refused imports
def test_hostile_payload_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    folder = _copy("tiny-saehd-df-ud-64", tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {marker}",))

    (folder / "tiny_SAEHD_inter.npy").write_bytes(pickle.dumps({"dense1/weight:0": Evil()}))
    before = _hashes(folder)
    with pytest.raises(DflFileRefusedError) as info:
        import_dfl_model(_files(folder), folder)
    assert "tiny_SAEHD_inter.npy" in str(info.value)
    assert "system" in info.value.requested
    assert not marker.exists()
    _only_dfl_files(folder, before)


def test_truncated_file_is_reported(tmp_path: Path) -> None:
    folder = _copy("tiny-saehd-df-ud-64", tmp_path)
    path = folder / "tiny_SAEHD_decoder_src.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = _hashes(folder)
    with pytest.raises(DflModelError, match=r"tiny_SAEHD_decoder_src\.npy is cut short"):
        import_dfl_model(_files(folder), folder)
    _only_dfl_files(folder, before)


def test_wrong_missing_and_left_over_weights_are_named(tmp_path: Path) -> None:
    folder = _copy("tiny-saehd-liae-ud-64", tmp_path)

    def damage(weights: dict) -> None:
        weights["dense1/weight:0"] = weights["dense1/weight:0"][:-1]  # wrong shape
        del weights["dense2/bias:0"]  # missing
        weights["extra/weight:0"] = np.zeros(3, np.float32)  # left over

    _rewrite(folder / "tiny_SAEHD_inter_B.npy", damage)
    before = _hashes(folder)
    with pytest.raises(DflImportError) as info:
        import_dfl_model(_files(folder), folder)
    problems = "\n".join(info.value.problems)
    assert "tiny_SAEHD_inter_B.npy: weight dense1/weight:0 has shape (2047, 32)" in problems
    assert "tiny_SAEHD_inter_B.npy: weight dense2/bias:0 is missing" in problems
    assert "tiny_SAEHD_inter_B.npy: weight extra/weight:0 is left over" in problems
    assert "nothing was written" in str(info.value)
    _only_dfl_files(folder, before)


def test_missing_network_file_is_named(tmp_path: Path) -> None:
    folder = _copy("tiny-saehd-df-ud-64", tmp_path)
    (folder / "tiny_SAEHD_decoder_dst.npy").unlink()
    before = _hashes(folder)
    with pytest.raises(DflImportError, match=r"tiny_SAEHD_decoder_dst\.npy: the file of network"):
        import_dfl_model(_files(folder), folder)
    _only_dfl_files(folder, before)


def test_existing_project_model_is_not_overwritten(imported) -> None:
    folder, report, _ = imported["tiny-saehd-df-ud-64"]
    with pytest.raises(DflModelError, match="already exists"):
        import_dfl_model(_files(folder), folder)
    assert ModelStore(report.folder).load().iteration == DFL_ITERATION


# ------------------------------------------------------------------------- optimizer state
def test_optimizer_accumulators_and_counter_are_imported(tmp_path: Path) -> None:
    """A DFL `src_dst_opt.npy` as docs/dfl-trainer.md §7 describes it: `ms_`/`vs_` + the weight's
    name with `:` -> `_`, and `iters` (the fixtures lack it, so one is made here)."""
    folder = _copy("tiny-saehd-df-ud-64", tmp_path)
    files = _files(folder)
    rng = np.random.default_rng(1)
    opt: dict[str, np.ndarray] = {"iters:0": np.asarray(9, np.int64)}
    for network in ("encoder", "inter", "decoder_src", "decoder_dst"):
        for key, value in read_weights(files.part_path(network)).items():
            name = f"{network}/{key[:-2]}_0:0"
            opt[f"ms_{name}"] = rng.random(value.shape, dtype=np.float32)
            opt[f"vs_{name}"] = rng.random(value.shape, dtype=np.float32)
    files.part_path("src_dst_opt").write_bytes(pickle.dumps(opt, protocol=4))
    report = import_dfl_model(files, folder)
    arrays = ModelStore(report.folder).load().arrays("src_dst_opt")
    # keyed by weight path and slot (dfl/store/optimizer_state.py)
    assert int(arrays["iteration"]) == 9
    kernel = "encoder/down1/downs_0/conv1/weight_0:0"
    np.testing.assert_array_equal(
        arrays["encoder/down1/downs_0/conv1/kernel/ms"], opt[f"ms_{kernel}"]
    )
    np.testing.assert_array_equal(
        arrays["decoder_dst/out_convm/bias/vs"], opt["vs_decoder_dst/out_convm/bias_0:0"]
    )


# ------------------------------------------------------------------------------- Quick96
def _write_dfl_quick96(folder: Path, arch) -> dict[str, dict[str, np.ndarray]]:
    """A DFL Quick96 model as DFL lays it out (`<name>_Quick96_<network>.npy`, RMSprop's
    `acc_` accumulators in src_dst_opt), with random weights of `arch`'s shapes."""
    from dfl.interop.deepfacelab.mapping import dfl_weight_name
    from dfl.models.quick96 import model as quick96

    rng = np.random.default_rng(2)
    model = quick96.DFAutoencoder(arch)
    files: dict[str, dict[str, np.ndarray]] = {}
    opt: dict[str, np.ndarray] = {"iters:0": np.asarray(12, np.int64)}
    for network, net in model.networks.items():
        weights = {}
        for variable in net.weights:
            name = dfl_weight_name(variable.path, network, quick96.SPEC)
            weights[f"{name}:0"] = rng.standard_normal(tuple(variable.shape)).astype(np.float32)
            opt[f"acc_{network}/{name}_0:0"] = rng.random(tuple(variable.shape), np.float32)
        files[network] = weights
    files["src_dst_opt"] = opt
    for part, weights in files.items():
        (folder / f"q_Quick96_{part}.npy").write_bytes(pickle.dumps(weights, protocol=4))
    data = {"iter": 12, "options": {"batch_size": np.int64(4)}, "loss_history": [[1.0, 2.0]] * 12}
    (folder / "q_Quick96_data.dat").write_bytes(pickle.dumps(data, protocol=4))
    return files


def test_quick96_import(tmp_path: Path, monkeypatch) -> None:
    from dfl.models.quick96 import model as quick96

    # Quick96's 96 px networks hold 38 M weights: the same layout at 32 px keeps the test fast
    tiny = dataclasses.replace(
        quick96.SPEC, build=lambda options: quick96.build(options, quick96.TINY)
    )
    monkeypatch.setattr(quick96, "SPEC", tiny)
    folder = tmp_path / "models"
    folder.mkdir()
    written = _write_dfl_quick96(folder, quick96.TINY)
    files = find_dfl_model(folder, "q")
    assert files is not None and files.model_class == "Quick96"
    report = import_dfl_model(files, folder)
    loaded = ModelStore(report.folder).load()
    assert report.folder.name == "q_Quick96" and loaded.iteration == 12
    assert loaded.state.options["batch_size"] == 4
    for network in ("encoder", "inter", "decoder_src", "decoder_dst"):
        ours = sorted(loaded.arrays(network).items())
        assert len(ours) == len(written[network])
        key, value = ours[0]
        np.testing.assert_array_equal(
            value, written[network][dfl_weight_name(key.split("/", 1)[1], network, tiny) + ":0"]
        )
    opt = loaded.arrays("optimizer")  # keyed by weight path and slot
    assert int(opt["iteration"]) == 12
    np.testing.assert_array_equal(
        opt["inter/dense1/kernel/acc"],
        written["src_dst_opt"]["acc_inter/dense1/weight_0:0"],
    )


def test_discriminators_are_imported_when_there_and_fresh_when_not(tmp_path: Path) -> None:
    """With true_face_power and gan_power on, DFL also saves code_discriminator.npy and GAN.npy;
    here only the first exists, so the GAN starts afresh (as DFL does) and says so."""
    from dfl.interop.deepfacelab.importer import prepare_import

    folder = _copy("tiny-saehd-df-ud-64", tmp_path)
    data_path = folder / "tiny_SAEHD_data.dat"
    data = pickle.loads(data_path.read_bytes())
    data["options"].update(true_face_power=np.float64(0.01), gan_power=np.float64(0.1))
    data_path.write_bytes(pickle.dumps(data, protocol=4))
    prepared = prepare_import(_files(folder))  # learns the discriminators' variables
    assert any("tiny_SAEHD_code_discriminator.npy is not there" in n for n in prepared.notes)
    code = prepared.arrays("code_discriminator")
    saehd_spec = load_model("SAEHD")
    written = {
        dfl_weight_name(k.split("/", 1)[1], "code_discriminator", saehd_spec) + ":0": v + 1.0
        for k, v in code.items()
    }
    (folder / "tiny_SAEHD_code_discriminator.npy").write_bytes(pickle.dumps(written, protocol=4))
    prepared = prepare_import(_files(folder))
    assert any("tiny_SAEHD_GAN.npy is not there: GAN starts afresh" in n for n in prepared.notes)
    for key, value in prepared.arrays("code_discriminator").items():
        name = dfl_weight_name(key.split("/", 1)[1], "code_discriminator", saehd_spec) + ":0"
        np.testing.assert_array_equal(value, written[name])
