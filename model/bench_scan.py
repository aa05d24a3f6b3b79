"""Milliseconds for one selective scan, forward and backward, per variant, on the CPU.

    cd model && /usr/bin/python3 bench_scan.py [--tokens 64 256] [--batch 12] [--threads 2] [--repeat 5]

Shapes are those of `small` in training: batch = 3 x the training batch ((c,s), (c,c), (s,s)),
K = 4 directions, Din = 512, N = 16, L = tokens ((crop / 8)^2: 64 at crop 64, 256 at crop 128).
Prints the best of --repeat runs of each variant and its ratio against `sequential` (the
baseline: what CPU training used before the kernel) measured in the same run.
"""
from __future__ import annotations

import argparse
import time

import torch

from mambast import scan
from mambast.scan_kernel import example_inputs


def main(argv=None):
    p = argparse.ArgumentParser(prog="bench_scan.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, nargs="+", default=[64, 256])
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--variants", nargs="+", default=["sequential", "kernel"])
    a = p.parse_args(argv)
    a.variants = ["sequential"] + [v for v in a.variants if v != "sequential"]  # the baseline first
    torch.set_num_threads(a.threads)
    k, din, n = 4, 512, 16
    print(f"batch {a.batch}, K {k}, Din {din}, N {n}, {a.threads} threads, torch {torch.__version__}")
    for length in a.tokens:
        xs = example_inputs(a.batch, k, din, n, length, torch.Generator().manual_seed(length))
        xs = [t.requires_grad_() for t in xs]
        base = None
        for v in a.variants:
            best = (float("inf"), float("inf"))
            for _ in range(a.repeat + 1):  # the first run builds/warms up
                for x in xs:
                    x.grad = None
                t0 = time.perf_counter()
                y = scan.selective_scan(*xs, scan_variant=v)
                t1 = time.perf_counter()
                y.backward(torch.ones_like(y))
                t2 = time.perf_counter()
                best = min(best, (t1 - t0, t2 - t1), key=sum)
            total = sum(best)
            base = base or (total if v == "sequential" else None)
            ratio = f"  {base / total:.2f}x vs sequential" if base else ""
            print(f"L {length:4d} {v:>10}: forward {1000 * best[0]:7.1f} ms, backward {1000 * best[1]:7.1f} ms, "
                  f"total {1000 * total:7.1f} ms{ratio}", flush=True)


if __name__ == "__main__":
    main()
