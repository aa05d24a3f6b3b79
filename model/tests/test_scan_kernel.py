"""The `kernel` scan (C++ forward and backward, mambast/csrc/scan_kernel.cpp) against the float64
reference loop, its input checks, and one training step against the sequential scan."""
import pytest
import torch

from mambast import scan
from mambast.scan_kernel import extension

from test_train import tiny_trainer


@pytest.fixture(scope="module", autouse=True)
def built():
    extension()  # builds once (~40 s cold); a failure here names the missing tool


def inputs(b, k, din, n, length, softplus, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)
    u, B, C, D = r(b, k * din, length), r(b, k, n, length), r(b, k, n, length), r(k * din)
    # without softplus dt = delta + bias must stay >= 0, or the states grow without bound
    delta = r(b, k * din, length) if softplus else torch.rand(b, k * din, length, generator=g)
    A = -torch.rand(k * din, n, generator=g) * 3 - 0.1
    bias = torch.rand(k * din, generator=g) * 0.5
    return [t.requires_grad_() for t in (u, delta, A, B, C, D, bias)]


SHAPES = {  # b, k, din, n, L: chunk edges (64), N other than 16, one token, K = 1
    "L150": (2, 2, 5, 16, 150),
    "L64-n7": (1, 3, 4, 7, 64),
    "L65": (1, 4, 3, 16, 65),
    "one-token": (2, 1, 3, 16, 1),
}


@pytest.mark.parametrize("softplus", [True, False])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_forward_and_every_gradient_match_the_float64_loop(shape, softplus):
    xs = inputs(*SHAPES[shape], softplus)
    y = scan.selective_scan(*xs, delta_softplus=softplus, scan_variant="kernel")
    ref_in = [t.detach().double().requires_grad_() for t in xs]
    ref = scan.selective_scan(*ref_in, delta_softplus=softplus, scan_variant="reference")
    assert y.dtype == torch.float32 and y.shape == ref.shape
    assert ((y.double() - ref).abs().max() / ref.abs().max()).item() < 1e-5
    gy = torch.randn(ref.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    got = torch.autograd.grad(y, xs, gy.float())
    want = torch.autograd.grad(ref, ref_in, gy)
    for name, a, b in zip(("u", "delta", "A", "B", "C", "D", "delta_bias"), got, want):
        assert a.shape == b.shape, name
        err = ((a.double() - b).abs().max() / b.abs().max().clamp_min(1e-6)).item()  # one token: dA = 0
        assert err < 1e-5, f"{name}: relative error {err:.2e}"


def test_large_steps_decay_to_zero_without_overflow():
    """dt * A far below exp's range: the states vanish (no inf/NaN), as in the reference."""
    xs = inputs(1, 2, 3, 16, 70, True)
    with torch.no_grad():
        xs[1].fill_(200.0)  # softplus(200 + bias) ~ 200, dt * A <= -20
    y = scan.selective_scan(*xs, scan_variant="kernel")
    ref = scan.selective_scan(*[t.detach().double() for t in xs], scan_variant="reference")
    assert torch.isfinite(y).all()
    assert ((y.double() - ref).abs().max() / ref.abs().max()).item() < 1e-5
    y.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in xs)


def test_empty_sequence_gives_an_empty_output():
    xs = inputs(1, 2, 3, 16, 0, True)
    y = scan.selective_scan(*xs, scan_variant="kernel")
    assert y.shape == (1, 6, 0)


def test_rejects_what_it_does_not_run():
    xs = [t.detach() for t in inputs(1, 2, 3, 16, 8, True)]
    with pytest.raises(ValueError, match="float32 CPU"):
        scan.selective_scan(*[t.double() for t in xs], scan_variant="kernel")
    u, delta, A, B, C, D, bias = xs
    with pytest.raises(RuntimeError, match="Bt and Ct must be"):
        scan.selective_scan(u, delta, A, B[..., :7], C, D, bias, scan_variant="kernel")
    with pytest.raises(RuntimeError, match="N must be in 1..64"):
        scan.selective_scan(u, delta, torch.zeros(6, 65) - 1, torch.zeros(1, 2, 65, 8), torch.zeros(1, 2, 65, 8),
                            D, bias, scan_variant="kernel")


def test_a_training_step_equals_the_sequential_scans():
    """Same seed, same batch: the loss and the updated weights agree with the sequential variant."""
    seq, ker = tiny_trainer(scan="sequential"), tiny_trainer(scan="kernel")
    ker.model.load_state_dict(seq.model.state_dict())
    a, b = seq.step(), ker.step()
    assert abs(a["total"] - b["total"]) <= 1e-4 * abs(a["total"])
    for (name, p), q in zip(seq.model.named_parameters(), ker.model.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name
    before = tiny_trainer(scan="sequential").model.state_dict()
    assert any(not torch.equal(before[k], v) for k, v in ker.model.state_dict().items())  # the step did move weights


def test_the_cuda_self_check_passes_a_correct_kernel_and_names_what_a_wrong_one_gets_wrong(monkeypatch):
    """The harness the GPU machine runs before trusting the CUDA kernel, here on the CPU kernel."""
    from mambast import scan_kernel
    assert scan_kernel.cuda_self_check(device="cpu") == ""

    right = scan_kernel.KernelScan

    class WrongD(right):
        @staticmethod
        def backward(ctx, gy):
            grads = list(right.backward(ctx, gy))
            grads[5] = grads[5] * 1.01  # gradient of D off by 1 %
            return tuple(grads)
    monkeypatch.setattr(scan_kernel, "KernelScan", WrongD)
    assert scan_kernel.cuda_self_check(device="cpu").startswith("D differs from the float64 loop")


def test_training_on_cuda_falls_back_to_the_parallel_scan_when_the_kernel_fails(monkeypatch, capsys):
    from mambast import scan_kernel, train
    monkeypatch.setattr(scan_kernel, "cuda_self_check", lambda: "y differs from the float64 loop by 1.00e+00")
    assert train.checked_cuda_scan() == "parallel"
    assert "CUDA scan kernel rejected (y differs" in capsys.readouterr().out

    def no_nvcc():
        raise RuntimeError("cannot build the CUDA scan kernel: nvcc not found")
    monkeypatch.setattr(scan_kernel, "cuda_self_check", no_nvcc)
    assert train.checked_cuda_scan() == "parallel"
    assert "nvcc not found" in capsys.readouterr().out
    monkeypatch.setattr(scan_kernel, "cuda_self_check", lambda: "")
    assert train.checked_cuda_scan() == "kernel"
