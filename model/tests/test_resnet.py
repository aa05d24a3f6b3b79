"""ResNet-18 loss network: the PyTorch interpreter against ONNX Runtime, the taps, blur and SWAG."""
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from mambast.resnet import ResNet18Features, default_path, swag
from mambast.vgg import calibration_batch


def _have_weights():
    try:
        return default_path().exists()
    except FileNotFoundError:
        return False


needs_weights = pytest.mark.skipif(not _have_weights(), reason="ResNet18.onnx not restored (model/tools/resnet18/fetch.sh)")


@pytest.fixture(scope="module")
def ort_ok(ort_available, tmp_path_factory):
    """ort_available, and its shared library still loads (node_modules is shared and can change under a
    built runner)."""
    path = tmp_path_factory.mktemp("ortcheck") / "id.onnx"
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "id",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 8)]), path)
    try:
        ort_available.run(path, {"x": np.ones(1, np.float32)})
    except RuntimeError as e:
        if "error while loading shared libraries" in str(e):
            pytest.skip(f"ONNX Runtime library missing: {e}")
        raise
    return ort_available


def mini_resnet(path, seed=0):
    """A small graph with ResNet18.onnx's structure and op set: CNTK's asymmetric pads, BN, a padded
    MaxPool, residual Adds with 1x1 stride-2 projections, and the final AveragePool."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def param(shape, name, positive=False):
        a = rng.uniform(0.5, 1.5, shape) if positive else rng.normal(0, 0.3, shape)
        inits.append(numpy_helper.from_array(a.astype(np.float32), name))
        return name

    def conv_bn(x, cin, cout, k, stride, pads, name):
        nodes.append(helper.make_node("Conv", [x, param((cout, cin, k, k), name + "w")], [name + "c"],
                                      kernel_shape=[k, k], strides=[stride, stride], pads=pads))
        nodes.append(helper.make_node("BatchNormalization", [name + "c", param((cout,), name + "g", True),
                                      param((cout,), name + "b"), param((cout,), name + "m"),
                                      param((cout,), name + "v", True)], [name + "n"], epsilon=1e-5))
        return name + "n"

    def relu(x, name):
        nodes.append(helper.make_node("Relu", [x], [name]))
        return name

    x = relu(conv_bn("input", 3, 4, 7, 2, [3, 3, 2, 2], "stem"), "stem_relu")
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 0]))
    x, cin = "pool", 4
    for s, cout in enumerate((4, 6, 8, 8)):
        stride = 1 if s == 0 else 2
        short = x if s == 0 else conv_bn(x, cin, cout, 1, 2, [0, 0, 0, 0], f"d{s}")
        y = relu(conv_bn(x, cin, cout, 3, stride, [1, 1, 0, 0] if stride == 2 else [1, 1, 1, 1], f"a{s}"), f"ar{s}")
        y = conv_bn(y, cout, cout, 3, 1, [1, 1, 1, 1], f"b{s}")
        nodes.append(helper.make_node("Add", [y, short], [f"add{s}"]))
        x, cin = relu(f"add{s}", f"stage{s}"), cout
    nodes.append(helper.make_node("AveragePool", [x], ["out"], kernel_shape=[2, 2], strides=[1, 1]))
    outs = ["stem_relu", "stage0", "stage1", "stage2", "stage3", "out"]
    graph = helper.make_graph(nodes, "mini", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    onnx.save(model, path)
    return outs


def _compare_with_ort(ort, onnx_path, net, size, extra=()):
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(3))
    pre = net.preprocess(x)
    ref = ort.run(onnx_path, {net.input_name: pre.numpy()})
    with torch.no_grad():
        got = net.run(pre, list(net.taps) + list(extra))
    assert set(got) <= set(ref)
    for k, v in got.items():
        r = ref[k]
        assert v.shape == r.shape, k
        assert np.abs(v.numpy() - r).max() <= 1e-4 * max(1.0, np.abs(r).max()), k


def test_interpreter_matches_onnxruntime_on_a_small_resnet(tmp_path, ort_ok):
    path = tmp_path / "mini.onnx"
    outs = mini_resnet(path)
    net = ResNet18Features(path, normalise=False)
    assert net.taps == outs[:5]
    _compare_with_ort(ort_ok, path, net, 64, extra=["out"])


@pytest.fixture(scope="module")
def r18():
    return ResNet18Features(blur=False, normalise=False)


@needs_weights
def test_resnet18_taps_match_onnxruntime(tmp_path, ort_ok, r18):
    model = onnx.load(str(default_path()))
    for t in r18.taps:  # expose the taps as graph outputs for ORT
        model.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    path = tmp_path / "taps.onnx"
    onnx.save(model, path)
    _compare_with_ort(ort_ok, path, r18, 224, extra=[model.graph.output[0].name])


@needs_weights
def test_resnet18_taps_shapes_preprocessing_and_scale(r18):
    x = calibration_batch(5, n=1, size=64)
    assert torch.allclose(r18.preprocess(x)[0, 0], x[0, 2] * 255 - 103.06262)  # BGR, 0-255, minus the mean
    feats = r18(x)
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    net = ResNet18Features(blur=True)
    for f in net(calibration_batch(1)):
        assert float(f.pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-3)
    assert all(not p.requires_grad for p in net.parameters())


def _checkerboard_share(g):
    """Share of a gradient image's energy in its 2x2 alternating (Nyquist) component."""
    cb = g[..., 0::2, 0::2] - g[..., 0::2, 1::2] - g[..., 1::2, 0::2] + g[..., 1::2, 1::2]
    return float(cb.pow(2).sum() / 4 / g.pow(2).sum())


@needs_weights
def test_blur_before_stride_suppresses_checkerboard_gradients(r18):
    blurred = ResNet18Features(blur=True, normalise=False)
    shares = []
    for net in (r18, blurred):
        x = calibration_batch(7, n=1, size=64).requires_grad_(True)
        sum(f.pow(2).mean() for f in net(x)).backward()
        shares.append(_checkerboard_share(x.grad))
    assert shares[1] < 0.25 * shares[0], shares


def test_swag_gives_each_channel_mean_one_and_flattens_nothing_it_should_not():
    f = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    s = swag(f)
    assert torch.allclose(s.mean((-2, -1)), torch.ones(2, 3), atol=1e-5)
    assert torch.allclose(swag(f + 7.0), s, atol=1e-5)  # shift-invariant per channel
    flat = swag(torch.zeros(1, 2, 3, 3))
    assert torch.allclose(flat, torch.ones_like(flat))
