""".dfm export: the ONNX converter, the per-model wiring, DeepFaceLive's checks, fp16, failures.

Tiny networks at 32 px; each export is compared through onnxruntime with the model's own
inference (predict_preview / AMP's swap), which does not share code with the exporter's wiring.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dfl import backend

backend.select(None)

import keras  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from dfl.interop.deepfacelive import contract, verify  # noqa: E402
from dfl.interop.deepfacelive.dfm import write_dfm  # noqa: E402
from dfl.interop.deepfacelive.errors import UnsupportedLayerError, VerificationError  # noqa: E402
from dfl.interop.deepfacelive.graph import OnnxGraph, tensor_info  # noqa: E402
from dfl.interop.deepfacelive.layers import Converter  # noqa: E402
from dfl.interop.deepfacelive.wiring import build_onnx  # noqa: E402
from dfl.models.amp import network as amp_archi  # noqa: E402
from dfl.models.quick96 import model as quick96  # noqa: E402
from dfl.nn import blocks  # noqa: E402
from dfl.nn.archi_networks import Architecture  # noqa: E402
from dfl.nn.autoencoders import build_autoencoder  # noqa: E402

RES = 32
TOLERANCE = 1e-4
FP16_TOLERANCE = verify.FP16_TOLERANCE
SEED = 3


def _liven(model: keras.Model, seed: int = SEED) -> keras.Model:
    """Random biases and larger kernels, so the outputs vary (fresh nets sit near sigmoid(0))."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        value = keras.ops.convert_to_numpy(v)
        if value.ndim == 1:
            v.assign(rng.normal(0.0, 0.3, value.shape).astype(np.float32))
        else:
            v.assign(value * 1.5)
    return model


def _faces(n: int, res: int = RES, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, res, res, 3)).astype(np.float32)


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _expected(model: keras.Model, faces: np.ndarray, morph: float | None) -> list[np.ndarray]:
    """(dst mask, swapped face, its mask) from the model's own inference code."""
    if morph is not None:  # AMP: morph 0 is the dst code alone
        (_, dst_mask), (face, face_mask) = model.predict_morph(faces, (0.0, morph))
        return [dst_mask, face, face_mask]
    out = model.predict_preview(faces, faces)
    return [out["ddm"], out["sd"], out["sdm"]]


def _check_round_trip(model: keras.Model, path: Path, morphs: tuple = (None,)) -> None:
    result = write_dfm(model.networks, path)
    assert result.path == path and path.is_file()
    assert result.size_bytes == path.stat().st_size
    assert result.verification.max_abs_diff < TOLERANCE
    session = _session(path)
    inputs = session.get_inputs()
    assert inputs[0].name == contract.IN_FACE
    assert inputs[0].shape[1:] == [RES, RES, 3] and isinstance(inputs[0].shape[0], str)
    assert inputs[0].type == "tensor(float)"
    if morphs != (None,):
        assert [i.name for i in inputs] == [contract.IN_FACE, contract.MORPH_VALUE]
        assert inputs[1].shape == [1]
    else:
        assert len(inputs) == 1
    assert [o.name for o in session.get_outputs()] == list(contract.OUTPUTS)
    for n in (1, 3):
        faces = _faces(n)
        for morph in morphs:
            feed = {contract.IN_FACE: faces}
            if morph is not None:
                feed[contract.MORPH_VALUE] = np.float32([morph])
            got = session.run(None, feed)
            want = _expected(model, faces, morph)
            for channels, a, b in zip(contract.OUTPUT_CHANNELS, got, want, strict=True):
                assert a.shape == (n, RES, RES, channels) and a.dtype == np.float32
                assert float(np.abs(a - b).max()) < TOLERANCE
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_quick96_round_trip(tmp_path: Path) -> None:
    model = _liven(quick96.build(None, quick96.TINY))
    _check_round_trip(model, tmp_path / "q.dfm")


@pytest.mark.parametrize(
    "layout,opts",
    [("df", "ud"), ("df", "udtc"), ("df", "t"), ("liae", ""), ("liae", "ud"), ("liae", "dc")],
)
def test_saehd_round_trip(tmp_path: Path, layout: str, opts: str) -> None:
    model = _liven(build_autoencoder(layout, Architecture(RES, 16, 8, 8, 4, opts)))
    _check_round_trip(model, tmp_path / f"{layout}-{opts}.dfm")


def test_amp_round_trip(tmp_path: Path) -> None:
    model = _liven(amp_archi.AMPAutoencoder(amp_archi.AMPArchitecture(RES, 16, 32, 8, 8, 4)))
    _check_round_trip(model, tmp_path / "amp.dfm", morphs=(0.0, 0.3, 0.75, 1.0))


def test_ir_version_opset_and_checker() -> None:
    model = build_autoencoder("liae", Architecture(RES, 16, 8, 8, 4, "ud"))
    proto = build_onnx(model.networks, "SAEHD")
    assert proto.ir_version == contract.IR_VERSION <= 8
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", contract.OPSET)]
    assert 12 <= contract.OPSET <= 17
    onnx.checker.check_model(proto)
    # the liae decoder is called twice but its weights are stored once
    names = [i.name for i in proto.graph.initializer]
    assert len(names) == len(set(names))
    weights = sum(int(np.prod(i.dims)) for i in proto.graph.initializer if len(i.dims) > 1)
    assert weights == sum(int(np.prod(w.shape)) for w in model.weights if len(w.shape) > 1)


def test_depth_to_space_matches_tf_order() -> None:
    """ONNX DepthToSpace (DCR) on NCHW equals our NHWC depth_to_space, exactly."""
    x = keras.Input((3, 5, 12))
    model = keras.Model(x, blocks.DepthToSpace()(x))
    graph = OnnxGraph()
    nchw = graph.node("Transpose", ["x"], "in", perm=[0, 3, 1, 2])
    (y,) = Converter(graph).network(model, [nchw], "net")
    graph.node("Transpose", [y], "out", output="y", perm=[0, 2, 3, 1])
    proto = graph.to_model("d2s", [tensor_info("x", ["N", 3, 5, 12])], [tensor_info("y", [])])
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    data = np.arange(2 * 3 * 5 * 12, dtype=np.float32).reshape(2, 3, 5, 12)
    (got,) = sess.run(None, {"x": data})
    np.testing.assert_array_equal(got, keras.ops.convert_to_numpy(model(data)))


def test_quantized_export(tmp_path: Path) -> None:
    model = _liven(build_autoencoder("df", Architecture(RES, 16, 8, 8, 4, "ud")))
    full = write_dfm(model.networks, tmp_path / "full.dfm")
    half = write_dfm(model.networks, tmp_path / "half.dfm", quantize=True)
    assert half.quantized and half.verification.tolerance == FP16_TOLERANCE
    assert half.size_bytes < 0.8 * full.size_bytes
    proto = onnx.load(str(tmp_path / "half.dfm"))
    types = {i.name: i.data_type for i in proto.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types.values()
    assert any(n.op_type == "Cast" for n in proto.graph.node)
    session = _session(tmp_path / "half.dfm")
    assert all(i.type == "tensor(float)" for i in session.get_inputs())
    faces = _faces(2)
    got = session.run(None, {contract.IN_FACE: faces})
    assert all(o.dtype == np.float32 for o in got)
    for a, b in zip(got, _expected(model, faces, None), strict=True):
        assert float(np.abs(a - b).max()) < FP16_TOLERANCE


def _inputs(*specs: tuple[str, list]) -> list[SimpleNamespace]:
    return [SimpleNamespace(name=name, shape=shape) for name, shape in specs]


def test_deepfacelive_checks() -> None:
    ok = verify.check_inputs(_inputs(("in_face:0", ["N", 64, 64, 3])))
    assert ok.resolution == 64 and not ok.has_morph
    amp = verify.check_inputs(_inputs(("in_face:0", [None, 96, 96, 3]), ("morph_value:0", [1])))
    assert amp.has_morph
    bad = [
        [],
        _inputs(("face:0", ["N", 64, 64, 3])),
        _inputs(("in_face:0", ["N", "H", "W", 3])),
        _inputs(("in_face:0", ["N", 64, 64, 3]), ("morph:0", [1])),
        _inputs(("in_face:0", ["N", 64, 64, 3]), ("morph_value:0", [1]), ("x", [1])),
    ]
    for inputs in bad:
        with pytest.raises(VerificationError):
            verify.check_inputs(inputs)


def test_a_wrong_file_is_rejected(tmp_path: Path) -> None:
    """A file whose input is not named in_face fails the check, and so does a non-ONNX file."""
    model = build_autoencoder("df", Architecture(RES, 16, 8, 8, 4, "ud"))
    proto = build_onnx(model.networks, "x")
    proto.graph.input[0].name = "image"
    for node in proto.graph.node:
        node.input[:] = ["image" if i == contract.IN_FACE else i for i in node.input]
    wrong = tmp_path / "wrong.dfm"
    onnx.save(proto, str(wrong))
    with pytest.raises(VerificationError, match="in_face"):
        verify.verify_file(wrong, model.networks)
    junk = tmp_path / "junk.dfm"
    junk.write_bytes(b"not a model")
    with pytest.raises(VerificationError, match="cannot open"):
        verify.verify_file(junk, model.networks)


def test_nested_functional_networks_are_walked(tmp_path: Path) -> None:
    model = _liven(build_autoencoder("df", Architecture(RES, 16, 8, 8, 4, "ud")))
    code = keras.Input(model.decoder_src.inputs[0].shape[1:])
    wrapped = keras.Model(code, model.decoder_src(code))  # the decoder as one layer inside
    result = write_dfm({**model.networks, "decoder_src": wrapped}, tmp_path / "n.dfm")
    assert result.verification.max_abs_diff < TOLERANCE


class _Unknown(keras.layers.Layer):
    def call(self, x):
        return x * 2.0


def test_unknown_layer_raises_naming_it(tmp_path: Path) -> None:
    model = build_autoencoder("df", Architecture(RES, 16, 8, 8, 4, "ud"))
    code = keras.Input(model.decoder_src.inputs[0].shape[1:])
    image, mask = model.decoder_src(_Unknown(name="odd")(code))
    networks = {**model.networks, "decoder_src": keras.Model(code, [image, mask])}
    with pytest.raises(UnsupportedLayerError, match=r"'odd' of type .*_Unknown"):
        write_dfm(networks, tmp_path / "x.dfm")
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = build_autoencoder("df", Architecture(RES, 16, 8, 8, 4, "ud"))
    path = tmp_path / "m.dfm"
    monkeypatch.setattr(verify, "FP32_TOLERANCE", 0.0)  # nothing can pass
    with pytest.raises(VerificationError, match="differs from the trained model"):
        write_dfm(model.networks, path)
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"an older export")
    with pytest.raises(VerificationError):
        write_dfm(model.networks, path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.dfm"]
    assert path.read_bytes() == b"an older export"  # an older file is left as it was


def test_a_model_over_the_onnx_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dfl.interop.deepfacelive import dfm
    from dfl.interop.deepfacelive.errors import ExportError

    model = build_autoencoder("df", Architecture(RES, 16, 8, 8, 4, "ud"))
    monkeypatch.setattr(dfm, "MAX_ONNX_BYTES", 1000)
    with pytest.raises(ExportError, match="at most 2 GiB; export quantized"):
        write_dfm(model.networks, tmp_path / "big.dfm")
    assert list(tmp_path.iterdir()) == []
