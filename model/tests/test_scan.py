"""Scan variants vs a plain per-token loop (float64), including L >= 4096 and large deltas."""
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from mambast import onnx_graph
from mambast.scan import scan_parallel, scan_reference, scan_sequential, selective_scan

RTOL = 1e-4


def make_inputs(seed, b=1, k=4, din=4, n=16, length=64, delta_scale=1.0, delta_shift=0.0,
                a_range=(0.0, 3.0), mixed=False):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, k * din, length, generator=g)
    delta = torch.randn(b, k * din, length, generator=g) * delta_scale + delta_shift
    if mixed:  # alternate very small and very large steps
        big = torch.rand(b, k * din, length, generator=g) < 0.3
        delta = torch.where(big, delta.abs() * 10 + 30, delta - 8)
    lo, hi = a_range
    A = -torch.exp(torch.rand(k * din, n, generator=g) * (hi - lo) + lo)
    B = torch.randn(b, k, n, length, generator=g)
    C = torch.randn(b, k, n, length, generator=g)
    D = torch.randn(k * din, generator=g)
    bias = torch.randn(k * din, generator=g) * 0.5
    return u, delta, A, B, C, D, bias


def rel_err(y, ref):
    return ((y.double() - ref).abs().max() / ref.abs().max()).item()


CASES = {
    "short": dict(length=37),
    "one_token": dict(length=1),
    "L4096": dict(length=4096, din=2),
    "L4099_large_delta": dict(length=4099, din=2, delta_scale=20.0, delta_shift=10.0),
    "mixed_huge_and_tiny_steps": dict(length=4096, din=2, mixed=True),
    "long_memory": dict(length=4096, din=2, delta_shift=-7.0, a_range=(-7.0, -4.0)),
    "batch2": dict(b=2, length=300),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("variant", ["sequential", "parallel"])
def test_variant_matches_reference(case, variant):
    args = make_inputs(hash(case) % 1000, **CASES[case])
    ref = scan_reference(*args)
    y = selective_scan(*args, delta_softplus=True, scan_variant=variant)
    assert y.dtype == torch.float32 and y.shape == args[0].shape
    assert torch.isfinite(y).all()
    assert rel_err(y, ref) < RTOL


@pytest.mark.parametrize("chunk", [2, 8, 64, 256])
def test_parallel_chunk_sizes(chunk):
    args = make_inputs(5, length=333, delta_scale=4.0)
    assert rel_err(scan_parallel(*args, chunk=chunk), scan_reference(*args)) < RTOL


def test_parallel_never_exponentiates_positive_numbers(monkeypatch):
    args = make_inputs(1, length=500, delta_scale=50.0, delta_shift=50.0)
    seen = []
    real_exp = torch.exp

    def spy(x, *a, **kw):
        seen.append(x.max().item())
        return real_exp(x, *a, **kw)
    monkeypatch.setattr(torch, "exp", spy)
    scan_parallel(*args)
    assert seen and max(seen) <= 0.0


def test_sequential_gradients_match_the_reference_loop():
    """`sequential` is what CPU training differentiates through (unbind/stack, not per-token slices):
    its gradients must be those of the float64 per-token loop."""
    grads = {}
    for variant in ("reference", "sequential"):
        args = [t.clone().requires_grad_(True) for t in make_inputs(11, b=2, length=45, delta_scale=3.0)]
        y = selective_scan(*args, scan_variant=variant)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        grads[variant] = [a.grad for a in args]
    for name, gs, gr in zip("u delta A B C D delta_bias".split(), grads["sequential"], grads["reference"]):
        assert torch.isfinite(gs).all(), name
        assert ((gs - gr).abs().max() / gr.abs().max()).item() < 1e-4, name


def test_unknown_variant_rejected():
    with pytest.raises(ValueError):
        selective_scan(*make_inputs(0, length=4), scan_variant="magic")


def _scan_model(variant, chunk=32, k=4, din=2, n=16):
    names = ["u", "delta", "A", "B", "C", "D", "delta_bias"]
    ranks = [3, 3, 2, 4, 4, 1, 1]
    inputs = [helper.make_tensor_value_info(nm, TensorProto.FLOAT, [None] * r) for nm, r in zip(names, ranks)]
    node = helper.make_node(onnx_graph.SCAN_OP, names, ["y"], domain=onnx_graph.SCAN_DOMAIN,
                            delta_softplus=1, k=k, d_inner=din, d_state=n)
    graph = helper.make_graph([node], "scan", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 3)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(onnx_graph.SCAN_DOMAIN, 1)])
    onnx_graph.expand_scans(model, variant, chunk)
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("variant", ["sequential", "parallel"])
def test_onnx_scan_graph_matches_reference(variant, ort_available, tmp_path):
    """The expanded ONNX subgraph itself, run by ONNX Runtime."""
    for case in ("L4099_large_delta", "mixed_huge_and_tiny_steps", "long_memory", "batch2"):
        params = CASES[case]
        model = _scan_model(variant, din=params.get("din", 4))
        ops = onnx_graph.count_ops(model)
        assert ops.get("Loop") == 1 and "SelectiveScan" not in ops
        path = tmp_path / f"scan-{case}.onnx"
        onnx.save(model, str(path))
        args = make_inputs(7, **params)
        feeds = dict(zip(["u", "delta", "A", "B", "C", "D", "delta_bias"], (a.numpy() for a in args)))
        y = ort_available.run(path, feeds)["y"]
        assert np.isfinite(y).all()
        assert rel_err(torch.from_numpy(y), scan_reference(*args)) < RTOL, case


def test_bench_train_baseline_is_the_same_recurrence():
    """bench_train.py's `sliced` baseline must compute what `sequential` computes, or its ratio lies."""
    from bench_train import scan_sliced
    args = make_inputs(4, b=2, length=37)
    assert rel_err(scan_sliced(*args), scan_sequential(*args)) < 1e-6
