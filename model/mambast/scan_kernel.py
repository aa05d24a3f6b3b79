"""The `kernel` scan variant: a C++ selective scan with its own backward pass, for CPU training.

`csrc/scan_kernel.cpp` is built on first use with torch.utils.cpp_extension (g++, ninja and the
libtorch headers: Debian's libtorch-dev, ninja-build and pybind11-dev, which scripts/setup.sh
installs) into model/.build/scan_kernel, and cached there. fp32 CPU tensors only.

Forward runs the recurrence once per channel, keeping the state at the start of every 64 tokens;
backward recomputes one chunk's states at a time and walks it backwards (no [b, KD, N, L] state
tensor is ever stored, unlike the autograd graphs of `sequential` and `parallel`).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

_EXT = None
SOURCE = Path(__file__).parent / "csrc" / "scan_kernel.cpp"
BUILD_DIR = Path(os.environ.get("MAMBAST_KERNEL_BUILD", Path(__file__).resolve().parent.parent / ".build" / "scan_kernel"))


def extension():
    """The compiled module (built once per source version; raises with the compiler's output)."""
    global _EXT
    if _EXT is None:
        from torch.utils import cpp_extension
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        try:
            _EXT = cpp_extension.load(
                name="mambast_scan_kernel", sources=[str(SOURCE)], build_directory=str(BUILD_DIR),
                extra_cflags=["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"],
                extra_ldflags=["-fopenmp"],
                verbose=False)
        except (RuntimeError, OSError) as e:
            raise RuntimeError(f"cannot build the scan kernel ({SOURCE}): {e}. It needs g++, ninja and the "
                               "libtorch headers (scripts/setup.sh installs libtorch-dev, ninja-build, "
                               "pybind11-dev); use --scan sequential otherwise") from e
    return _EXT


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


def scan_kernel(u, delta, A, B, C, D, delta_bias, delta_softplus=True):
    from .scan import _delta
    return KernelScan.apply(u, _delta(delta, delta_bias, delta_softplus), A, B, C, D)
