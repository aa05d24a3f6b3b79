"""Golden cases for the C# engine: tiny ONNX graphs (both scan variants) + inputs + PyTorch outputs.

    cd model && python -m mambast.golden --out ../tests/fixtures/golden

Layout of OUT:
    manifest.json
    tiny-sequential/{style_encoder,stylizer}.onnx
    tiny-parallel/{style_encoder,stylizer}.onnx
    cases/<case>/{content,style,style_index,strength,style_tokens,stylized}.npy
    style-index/<n>.npy
All .npy files: format v1.0, little-endian float32 or int64, C order.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import get_config
from .export import export
from .model import build_model
from .style_index import style_index

CONFIG = "tiny"
MODEL_SEED = 7
VARIANTS = ("sequential", "parallel")

# name, batch, content (H, W), style (Hs, Ws), style_index seeds (one per item), strengths
CASES = [
    ("square_64x64", 1, (64, 64), (64, 64), [11], [1.0]),
    ("nonsquare_64x96_style_48x80", 1, (64, 96), (48, 80), [12], [1.0]),
    ("batch2_strength_1_and_0.5", 2, (64, 64), (48, 80), [21, 22], [1.0, 0.5]),
]

# (seed, Ls, L): fewer, equal and more style tokens than content positions; extreme seeds
STYLE_INDEX_CASES = [(0, 16, 16), (1, 60, 64), (42, 64, 96), (7, 96, 64), (2**64 - 1, 1024, 4096),
                     (0x9E3779B97F4A7C15, 5, 37), (123456789, 1, 10)]


def smooth_images(rng: np.random.RandomState, b: int, h: int, w: int) -> np.ndarray:
    """Photo-like test images in [0, 1]: coarse random colour fields, bilinearly upsampled, plus
    a gentle gradient and a little fine texture."""
    coarse = torch.from_numpy(rng.rand(b, 3, max(2, h // 16), max(2, w // 16)).astype(np.float32))
    img = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    grad = torch.from_numpy((0.15 * (yy - xx)).astype(np.float32))
    texture = torch.from_numpy((0.03 * rng.randn(b, 3, h, w)).astype(np.float32))
    return (0.85 * img + grad + texture).clamp(0, 1).numpy().astype(np.float32)


def _save(path: Path, arr: np.ndarray) -> dict:
    arr = np.ascontiguousarray(arr)
    assert arr.dtype in (np.float32, np.int64)
    np.save(path, arr.astype(arr.dtype.newbyteorder("<")), allow_pickle=False)
    return {"file": path.name, "dtype": str(arr.dtype), "shape": list(arr.shape)}


def generate(out_dir) -> dict:
    torch.set_num_threads(1)
    out = Path(out_dir)
    for sub in ("cases", "style-index", *(f"{CONFIG}-{v}" for v in VARIANTS)):
        shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)

    model = build_model(get_config(CONFIG), seed=MODEL_SEED, scan_variant="sequential")
    provenance = f"random-init seed {MODEL_SEED}"
    graphs = {}
    for v in VARIANTS:
        folder = out / f"{CONFIG}-{v}"
        export(model, folder, v, provenance, model_version="golden", card=False, fused_siblings=False)
        graphs[v] = {"folder": folder.name, "style_encoder": "style_encoder.onnx", "stylizer": "stylizer.onnx"}

    rng = np.random.RandomState(2024)
    cases = []
    for name, b, (h, w), (hs, ws), seeds, strengths in CASES:
        folder = out / "cases" / name
        folder.mkdir(parents=True)
        content = smooth_images(rng, b, h, w)
        style = smooth_images(rng, b, hs, ws)
        ls, l = (hs // 8) * (ws // 8), (h // 8) * (w // 8)
        index = np.stack([style_index(s, ls, l) for s in seeds])
        strength = np.asarray(strengths, dtype=np.float32)
        with torch.no_grad():
            tokens = model.encode_style(torch.from_numpy(style))
            stylized = model.stylize(torch.from_numpy(content), tokens, torch.from_numpy(index),
                                     torch.from_numpy(strength))
        files = {
            "content": _save(folder / "content.npy", content),
            "style": _save(folder / "style.npy", style),
            "style_index": _save(folder / "style_index.npy", index),
            "strength": _save(folder / "strength.npy", strength),
            "style_tokens": _save(folder / "style_tokens.npy", tokens.numpy()),
            "stylized": _save(folder / "stylized.npy", stylized.numpy()),
        }
        cases.append({
            "name": name, "folder": f"cases/{name}", "batch": b, "content_hw": [h, w], "style_hw": [hs, ws],
            "style_index_seeds": seeds, "ls": ls, "l": l, "strength": strengths, "files": files,
            "style_encoder": {"inputs": {"style": "style"}, "outputs": {"style_tokens": "style_tokens"}},
            "stylizer": {"inputs": {k: k for k in ("content", "style_tokens", "style_index", "strength")},
                         "outputs": {"stylized": "stylized"}},
        })

    si_cases = []
    (out / "style-index").mkdir()
    for i, (seed, ls, l) in enumerate(STYLE_INDEX_CASES):
        meta = _save(out / "style-index" / f"{i}.npy", style_index(seed, ls, l))
        si_cases.append({"seed": seed, "ls": ls, "l": l, "file": f"style-index/{meta['file']}",
                         "first": style_index(seed, ls, l)[:8].tolist()})

    manifest = {
        "format": 1,
        "generator": "cd model && python -m mambast.golden --out ../tests/fixtures/golden",
        "config": CONFIG,
        "model_seed": MODEL_SEED,
        "provenance": provenance,
        "torch_scan_variant": "sequential",
        "tolerance": {"style_tokens_abs": 1e-4, "stylized_abs": 1e-4,
                      "note": "PyTorch (fp32, CPU) vs the ONNX graphs; ORT CPU agrees to ~3e-6"},
        "graphs": graphs,
        "cases": cases,
        "style_index_cases": si_cases,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mambast.golden", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    generate(a.out)
    total = sum(f.stat().st_size for f in Path(a.out).rglob("*") if f.is_file())
    print(f"wrote {a.out} ({total:,} bytes)")


if __name__ == "__main__":
    main()
