"""Benchmark of the selective scan through ONNX Runtime: sequential (Loop), parallel (chunked) and
fused (libmambast_ops.so), one-node graphs; and whole images (style encoder + stylizer).

    cmake -S native -B artifacts/native -DCMAKE_BUILD_TYPE=Release && cmake --build artifacts/native -j2
    /usr/bin/python3 native/bench/bench_fused.py scan --lengths 1024 4096 [--skip parallel@4096]
    /usr/bin/python3 native/bench/bench_fused.py image --config small --sizes 256 512

Prints Markdown table rows. Timings: first run, then median of --repeat runs (runner --repeat).
"""
import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "model"))
sys.path.insert(0, str(REPO / "model" / "tests"))

from mambast.onnx_graph import expand_scans  # noqa: E402
from test_fused_scan import make_inputs, one_node_model  # noqa: E402


def timed(build, model, feeds, threads, repeat, tmp):
    args = [str(build / "mambast_ort_run"), str(model), str(tmp), "--ops", str(build / "libmambast_ops.so"),
            "--threads", str(threads), "--repeat", str(repeat), "--no-write"]
    for name, arr in feeds.items():
        p = Path(tmp) / f"in_{name}.npy"
        if not p.exists():
            np.save(p, np.ascontiguousarray(arr))
        args.append(f"{name}={p}")
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    m = re.search(r"first_ms=([\d.e+]+) median_ms=([\d.e+]+)", res.stdout)
    return float(m.group(1)), float(m.group(2))


def bench_scan(a, build):
    k, din, n = 4, a.channels // 4, 16
    print("| L | variant | first ms | median ms | runs |")
    print("|---|---|---|---|---|")
    for length in a.lengths:
        with tempfile.TemporaryDirectory() as tmp:
            f = make_inputs(np.random.default_rng(0), 1, k, din, n, length, 1.0)
            fused = one_node_model(Path(tmp) / "fused.onnx", k, din, n)
            for variant in a.variants:
                if f"{variant}@{length}" in a.skip:
                    print(f"| {length} | {variant} | skipped | | |")
                    continue
                path = fused
                if variant != "fused":
                    m = expand_scans(onnx.load(str(fused)), variant, 32)
                    path = Path(tmp) / f"{variant}.onnx"
                    onnx.save(m, str(path))
                repeat = a.repeat if variant == "fused" else max(1, a.repeat // 3)
                first, med = timed(build, path, f, a.threads, repeat, tmp)
                print(f"| {length} | {variant} | {first:.0f} | {med:.1f} | {repeat} |", flush=True)


def bench_image(a, build):
    import torch
    from mambast import build_model, get_config, style_index
    from mambast.export import export
    model = build_model(get_config(a.config), seed=0, scan_variant="sequential")
    print("| config | size | scan | style encoder ms | stylizer ms | total ms |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for scan in a.variants:
            folder = Path(tmp) / scan
            export(model, folder, scan, "random-init seed 0", card=False)
            for size in a.sizes:
                g = torch.Generator().manual_seed(size)
                content = torch.rand(1, 3, size, size, generator=g).numpy()
                style = torch.rand(1, 3, size, size, generator=g).numpy()
                l = (size // 8) ** 2
                run_dir = Path(tmp) / f"run-{scan}-{size}"
                run_dir.mkdir()
                _, enc = timed(build, folder / "style_encoder.onnx", {"style": style}, a.threads, a.repeat, run_dir)
                tokens = np.zeros((1, l, model.cfg.d_model), np.float32)
                feeds = {"content": content, "style_tokens": tokens,
                         "style_index": style_index(7, l, l)[None].astype(np.int64),
                         "strength": np.ones(1, np.float32)}
                _, sty = timed(build, folder / "stylizer.onnx", feeds, a.threads, a.repeat, run_dir)
                print(f"| {a.config} | {size}x{size} | {scan} | {enc:.0f} | {sty:.0f} | {enc + sty:.0f} |", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("scan", "image"))
    p.add_argument("--build", default=str(REPO / "artifacts" / "native"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--channels", type=int, default=4096, help="K*Din (K = 4)")
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    p.add_argument("--variants", nargs="+", default=None)
    p.add_argument("--skip", nargs="*", default=[], help="variant@L pairs to skip, e.g. parallel@4096")
    p.add_argument("--config", default="small")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    a = p.parse_args()
    build = Path(a.build)
    if a.what == "scan":
        a.variants = a.variants or ["fused", "sequential", "parallel"]
        bench_scan(a, build)
    else:
        a.variants = a.variants or ["fused", "sequential"]
        bench_image(a, build)


if __name__ == "__main__":
    main()
