"""PyTorch CPU latency of Mamba-ST per image (batch 1, strength 1), per config, size and scan variant.

    cd model && /usr/bin/python3 bench.py [--quick] [--threads 2] [--repeats 2]

The scan runs through the torch functions that mirror the exported ONNX graphs
(`sequential`: per-token recurrence, `parallel`: chunked two-level scan). Random weights.

glibc returns large freed blocks to the OS, and on this sandboxed machine the page faults of
re-allocating them cost more than the arithmetic (the parallel scan ran 30x slower). Unless
--no-malloc-tuning is given, the script re-executes itself with MALLOC_MMAP_MAX_=0 and a huge
MALLOC_TRIM_THRESHOLD_, so freed memory is reused (as ONNX Runtime's arena does).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from mambast import build_model, get_config, style_index


def time_one(model, size, repeats):
    g = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, size, size, generator=g)
    style = torch.rand(1, 3, size, size, generator=g)
    l = (size // 8) ** 2
    idx = torch.from_numpy(style_index(1, l, l)).unsqueeze(0)
    enc_ms, sty_ms = [], []
    with torch.inference_mode():
        model.stylize(content, model.encode_style(style), idx, torch.ones(1))  # warm-up: grows the heap
        for _ in range(repeats):
            t0 = time.perf_counter()
            tokens = model.encode_style(style)
            t1 = time.perf_counter()
            model.stylize(content, tokens, idx, torch.ones(1))
            t2 = time.perf_counter()
            enc_ms.append(1e3 * (t1 - t0))
            sty_ms.append(1e3 * (t2 - t1))
    return statistics.median(enc_ms), statistics.median(sty_ms)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small config at 256x256 only, one repeat")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1, help="timed runs after one warm-up run")
    p.add_argument("--no-malloc-tuning", action="store_true")
    a = p.parse_args(argv)
    if not a.no_malloc_tuning and "MALLOC_MMAP_MAX_" not in os.environ:
        env = dict(os.environ, MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_=str(1 << 40))
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    torch.set_num_threads(a.threads)
    configs = ["small"] if a.quick else ["small", "base"]
    sizes = [256] if a.quick else [256, 512]
    repeats = 1 if a.quick else a.repeats
    tuned = "malloc tuned" if "MALLOC_MMAP_MAX_" in os.environ else "default malloc"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {tuned}, batch 1, strength 1, "
          f"one warm-up run, median of {repeats}")
    print("| config | size | scan | style encoder ms | stylizer ms | total ms/image |")
    print("|---|---|---|---|---|---|")
    for name in configs:
        model = build_model(get_config(name), seed=0)
        for size in sizes:
            for variant in ("sequential", "parallel"):
                model.scan.variant = variant
                enc, sty = time_one(model, size, repeats)
                print(f"| {name} | {size}x{size} | {variant} | {enc:.0f} | {sty:.0f} | {enc + sty:.0f} |", flush=True)


if __name__ == "__main__":
    main()
