"""Seconds per training step (forward + backward + Adam) of a config, per scan variant, on the CPU
or (--device cuda) a GPU.

    cd model && /usr/bin/python3 bench_train.py [--config small] [--crop 64] [--batch 4] [--threads 2] [--steps 4]
    cd model && python3 bench_train.py --device cuda --config small --crop 256 --batch 8 --steps 3 \
        --variants parallel sequential --no-malloc-tuning      # on the GPU machine

Random weights and random smooth images (no data needed). Prints the median of --steps timed steps
after one warm-up step for each variant, and each variant's ratio against the first one listed (the
baseline, measured in the same run). The default baseline `sliced` is the sequential recurrence with its per-token inputs taken as L slices
(what `sequential` did before it switched to one `unbind` per input; kept here, not in mambast).
On CUDA it prints each variant's peak GPU memory and the GPU's name; on the CPU, which BLAS PyTorch uses:
Debian's python3-torch runs on whatever libblas.so.3 the alternatives system points at, and the
reference BLAS makes every step several times slower (scripts/setup.sh installs OpenBLAS).
Like bench.py it re-executes itself with glibc malloc tuned to keep freed memory.
"""
from __future__ import annotations

import argparse
import os
import contextlib
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from mambast import scan
from mambast.data import ImagePool
from mambast.train import Trainer


def scan_sliced(u, delta, A, B, C, D, delta_bias, delta_softplus=True):
    """Baseline: the recurrence with u[:, :, t]-style slices per token (backward: L full-size zero
    gradients)."""
    b, kd, length = u.shape
    k, n = B.shape[1], A.shape[1]
    din = kd // k
    dt = scan._delta(delta, delta_bias, delta_softplus)
    A4 = A.reshape(1, k, din, n)
    h = u.new_zeros(b, k, din, n)
    ys = []
    for t in range(length):
        d4 = dt[:, :, t].reshape(b, k, din, 1)
        h = torch.exp(d4 * A4) * h + (d4 * u[:, :, t].reshape(b, k, din, 1)) * B[:, :, :, t].unsqueeze(2)
        ys.append((h * C[:, :, :, t].unsqueeze(2)).sum(3).reshape(b, kd))
    return torch.stack(ys, -1) + D.unsqueeze(1) * u


def scan_none(u, delta, A, B, C, D, delta_bias, delta_softplus=True):
    """No recurrence at all (y = D u, delta kept in the graph): what a step costs without its scans."""
    return D.unsqueeze(1) * u + 0 * delta


@contextlib.contextmanager
def variant(name):
    """Yields the scan_variant to build the model with; `sliced` swaps the baseline into the
    sequential scan, `none` swaps in scan_none (a lower bound, not a model)."""
    swap = {"sliced": scan_sliced, "none": scan_none}.get(name)
    if swap is None:
        yield name
        return
    real = scan.scan_sequential
    scan.scan_sequential = swap
    try:
        yield "sequential"
    finally:
        scan.scan_sequential = real


def blas() -> str:
    try:
        with open("/proc/self/maps") as maps:
            libs = {line.split()[-1] for line in maps if "blas" in line.lower()}
        return ", ".join(sorted(os.path.realpath(p) for p in libs)) or "none mapped"
    except OSError:
        return "unknown"


def pool(seed: int, n: int = 4, size: int = 160) -> ImagePool:
    g = torch.Generator().manual_seed(seed)
    return ImagePool([F.interpolate(torch.rand(1, 3, 12, 12, generator=g), size=(size, size), mode="bilinear",
                                    align_corners=False)[0] for _ in range(n)])


def main(argv=None):
    p = argparse.ArgumentParser(prog="bench_train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="small")
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--variants", nargs="+", default=["sliced", "sequential"],
                   help="also: kernel, parallel (the chunked scan; its backward is slow on CPU: minutes per "
                        "step), none (no scan: the rest of the step)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cuda: also prints each variant's peak GPU memory (scans other than `kernel` recomputed "
                        "in backward); run mambast.scan_kernel.cuda_self_check() before trusting `kernel` there")
    p.add_argument("--no-malloc-tuning", action="store_true")
    a = p.parse_args(argv)
    if not a.no_malloc_tuning and os.environ.get("MALLOC_MMAP_MAX_") != "0":
        env = dict(os.environ, MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="10000000000")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    torch.set_num_threads(a.threads)
    print(f"config {a.config}, crop {a.crop}, batch {a.batch}, {a.threads} threads, torch {torch.__version__}")
    results = {}
    for name in a.variants:
        with variant(name) as model_variant:
            side = max(160, a.crop + a.crop // 4)
            tr = Trainer(a.config, pool(1, size=side), pool(2, size=side), a.crop, a.batch, scan=model_variant,
                         device=a.device)
            if a.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            tr.step()  # warm-up (allocator, oneDNN primitives / cuDNN algorithm choice)
            times = []
            for _ in range(a.steps):
                t0 = time.perf_counter()
                tr.step()  # synchronises the GPU before it returns
                times.append(time.perf_counter() - t0)
            mem = (f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
                   if a.device == "cuda" else "")
            del tr
        results[name] = statistics.median(times)
        base = a.variants[0]
        ratio = f"  {results[base] / results[name]:.2f}x vs {base}" if name != base else "  (baseline)"
        print(f"{name:>10}: {results[name]:.3f} s/step (median of {a.steps}){ratio}{mem}", flush=True)
    if a.device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name()}")
    else:
        print(f"BLAS: {blas()}")


if __name__ == "__main__":
    main()
