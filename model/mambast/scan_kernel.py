"""The `kernel` scan variant: a C++ selective scan with its own backward pass, for training.

`csrc/scan_kernel.cpp` is built on first use with torch.utils.cpp_extension (g++, ninja and the
libtorch headers: Debian's libtorch-dev, ninja-build and pybind11-dev, which scripts/setup.sh
installs) into model/.build/scan_kernel-<CPU features>, and cached there. fp32 CPU tensors only.

Forward runs the recurrence once per channel, keeping the state at the start of every 64 tokens;
backward recomputes one chunk's states at a time and walks it backwards (no [b, KD, N, L] state
tensor is ever stored, unlike the autograd graphs of `sequential` and `parallel`).

On CUDA (`csrc/scan_kernel_cuda.cu`, N = 16 only) the same algorithm runs one thread per channel.
**It has not been compiled or run yet** (written without a GPU): `cuda_self_check()` compares it with
the float64 loop on first use, and `mambast.train --scan kernel --device cuda` falls back to the
parallel scan when the build or that check fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

SOURCE = Path(__file__).parent / "csrc" / "scan_kernel.cpp"
SOURCE_CUDA = Path(__file__).parent / "csrc" / "scan_kernel_cuda.cu"
_BUILT: dict[str, object] = {}


def _cpu_tag() -> str:
    """The CPU build uses -march=native: one build folder per set of CPU features, so that a folder
    reused on another CPU (a copied checkout) never loads code its CPU cannot run."""
    import hashlib
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = "unknown"
    return hashlib.sha256(flags.encode()).hexdigest()[:10]


BUILD_DIR = Path(os.environ.get("MAMBAST_KERNEL_BUILD",
                                Path(__file__).resolve().parent.parent / ".build" / f"scan_kernel-{_cpu_tag()}"))


def _load(name: str, source: Path, folder: Path, hint: str, **flags):
    """torch.utils.cpp_extension.load, once per process; the build is cached in `folder`."""
    if name not in _BUILT:
        from torch.utils import cpp_extension
        folder.mkdir(parents=True, exist_ok=True)
        try:
            _BUILT[name] = cpp_extension.load(name=name, sources=[str(source)], build_directory=str(folder),
                                              verbose=False, **flags)
        except (RuntimeError, OSError) as e:
            raise RuntimeError(f"cannot build {source}: {e}{hint}") from e
    return _BUILT[name]


def extension():
    """The CPU module (built once per source version; raises with the compiler's output)."""
    return _load("mambast_scan_kernel", SOURCE, BUILD_DIR,
                 ". It needs g++, ninja and the libtorch headers (scripts/setup.sh installs libtorch-dev, "
                 "ninja-build, pybind11-dev); use --scan sequential otherwise",
                 extra_cflags=["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"],
                 extra_ldflags=["-fopenmp"])


def extension_cuda():
    """The CUDA module (nvcc, on a GPU machine), cached next to the CPU one."""
    return _load("mambast_scan_kernel_cuda", SOURCE_CUDA, BUILD_DIR.parent / "scan_kernel_cuda", "",
                 extra_cflags=["-O3"], extra_cuda_cflags=["-O3"])


def example_inputs(b: int, k: int, din: int, n: int, length: int, generator: torch.Generator,
                   positive_delta: bool = False) -> list[torch.Tensor]:
    """Random u, delta, A (negative), B, C, D, delta_bias for tests, checks and benchmarks.
    positive_delta: delta in [0, 1) (without softplus a negative step makes the states grow)."""
    r = lambda *s: torch.randn(*s, generator=generator)
    return [r(b, k * din, length),
            torch.rand(b, k * din, length, generator=generator) if positive_delta else r(b, k * din, length),
            -torch.rand(k * din, n, generator=generator) * 3 - 0.1, r(b, k, n, length), r(b, k, n, length),
            r(k * din), torch.rand(k * din, generator=generator) * 0.5]


class KernelScan(torch.autograd.Function):
    """y = scan(u, dt, A, B, C, D) with dt already softplus-ed; see csrc/scan_kernel.cpp."""

    @staticmethod
    def forward(ctx, u, dt, A, B, C, D):
        ext = extension()
        for name, t in (("u", u), ("dt", dt), ("A", A), ("B", B), ("C", C), ("D", D)):
            if t.device.type != "cpu" or t.dtype != torch.float32:
                raise ValueError(f"the kernel scan runs on float32 CPU tensors; {name} is {t.dtype} on {t.device}")
        args = (u.contiguous(), dt.contiguous(), A.contiguous(), B.transpose(-1, -2).contiguous(),
                C.transpose(-1, -2).contiguous(), D.contiguous())
        y, states = ext.forward(*args)
        ctx.save_for_backward(*args, states)
        return y

    @staticmethod
    def backward(ctx, gy):
        gu, gdt, gA, gBt, gCt, gD = extension().backward(gy.contiguous(), *ctx.saved_tensors)
        return gu, gdt, gA.sum(0), gBt.transpose(-1, -2), gCt.transpose(-1, -2), gD.sum(0)


class KernelScanCuda(torch.autograd.Function):
    """The CUDA kernel: channels last ([b, L, KD]) so that a warp reads consecutive addresses."""

    @staticmethod
    def forward(ctx, u, dt, A, B, C, D):
        ext = extension_cuda()
        if A.shape[1] != 16:
            raise ValueError(f"the CUDA scan kernel needs N = 16, got {A.shape[1]}")
        args = (u.transpose(1, 2).contiguous(), dt.transpose(1, 2).contiguous(), A.contiguous(),
                B.transpose(-1, -2).contiguous(), C.transpose(-1, -2).contiguous(), D.contiguous())
        y, states = ext.forward(*args)
        ctx.save_for_backward(*args, states)
        ctx.k = B.shape[1]
        return y.transpose(1, 2)

    @staticmethod
    def backward(ctx, gy):
        gu, gdt, gA, gBc, gCc, gD = extension_cuda().backward(gy.transpose(1, 2).contiguous(), *ctx.saved_tensors)
        b, length, n, kd = gBc.shape
        k = ctx.k
        # per-channel terms [b, L, N, K*Din] -> sums over each direction's channels -> [b, K, N, L]
        gB = gBc.view(b, length, n, k, kd // k).sum(-1).permute(0, 3, 2, 1)
        gC = gCc.view(b, length, n, k, kd // k).sum(-1).permute(0, 3, 2, 1)
        return gu.transpose(1, 2), gdt.transpose(1, 2), gA.sum(0), gB, gC, gD.sum(0)


def cuda_self_check(device="cuda", tol: float = 1e-4) -> str:
    """'' when the CUDA kernel's output and gradients match the float64 loop on small shapes
    (several chunks, a partial one, Din not a multiple of the block), else what differs."""
    from .scan import scan_reference
    g = torch.Generator().manual_seed(0)
    for b, k, din, length in ((2, 2, 130, 37), (1, 4, 8, 16), (1, 1, 3, 1)):
        cpu = example_inputs(b, k, din, 16, length, g)
        xs = [t.to(device).requires_grad_() for t in cpu]
        y = scan_kernel(*xs)
        ref_in = [t.double().requires_grad_() for t in cpu]
        ref = scan_reference(*ref_in)
        gy = torch.randn(ref.shape, generator=g, dtype=torch.float64)
        got = torch.autograd.grad(y, xs, gy.float().to(device))
        want = torch.autograd.grad(ref, ref_in, gy)
        for name, a, w in zip(("y", "u", "delta", "A", "B", "C", "D", "delta_bias"),
                              (y.detach(), *got), (ref.detach(), *want)):
            err = ((a.double().cpu() - w).abs().max() / w.abs().max().clamp_min(1e-6)).item()
            if not err < tol:
                return f"{name} differs from the float64 loop by {err:.2e} (shape b={b} k={k} din={din} L={length})"
    return ""


def scan_kernel(u, delta, A, B, C, D, delta_bias, delta_softplus=True):
    from .scan import _delta
    fn = KernelScanCuda if u.is_cuda else KernelScan
    return fn.apply(u, _delta(delta, delta_bias, delta_softplus), A, B, C, D)
