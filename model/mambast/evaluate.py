"""Evaluate a Mamba-ST checkpoint against two baselines with metrics that need no downloaded weights.

    cd model && python -m mambast.evaluate --checkpoint ../artifacts/train/small/last.pt \
        --content /work/shared/data/images/content --style /work/shared/data/images/style \
        --size 256 --max-content 5 --max-style 4 --out ../artifacts/eval

Methods: `content` (the unchanged content image), `reinhard` (per-channel mean/std transfer in CIE
Lab, Reinhard et al. 2001) and each model (PyTorch, style index seed 0, strength 1, clamped to
[0, 1]); `--checkpoint A.pt v2=B.pt` evaluates several checkpoints in one run (label=path names
a row; a bare path is `model`, or its file stem when there are several). `--strength 0 0.5 1` scores
each model at several style strengths (rows `label@strength`; 0 is the model's own reconstruction of
the content, the ceiling of its content structure), the trade-off curve the product's strength setting
walks along.
Metrics, averaged over all content x style pairs:
* content structure (higher = more of the content kept): `ssim` (11x11 Gaussian window, sigma 1.5,
  on luma) and `edge_corr` (Pearson correlation of Sobel gradient magnitudes), output vs content;
* style statistics (lower = closer to the style): `hist_hellinger`, Hellinger distance between
  RGB-uv log-chroma histograms (Afifi et al., HistoGAN 2021; intensity-weighted, 64x64 bins over
  [-3, 3] for each of the three reference channels) of output and style, and `gram`, the mean over
  relu1_1..relu5_1 of ||G(out) - G(style)||_F / ||G(style)||_F under the fixed random VGG-19.
Writes results.json, table.md and contact_sheet.png (content | style | reinhard | each model) to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .data import grid, list_images, read_image, write_png
from .vgg import PerceptualVGG, random_vgg

# ---------------------------------------------------------------- colour spaces / Reinhard
_M_RGB2XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                           [0.2126729, 0.7151522, 0.0721750],
                           [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


def rgb_to_lab(img: torch.Tensor) -> torch.Tensor:
    """sRGB [.., 3, H, W] in [0, 1] -> CIE Lab (D65), float64."""
    x = img.double().clamp(0, 1)
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,...jhw->...ihw", _M_RGB2XYZ, lin) / _WHITE.reshape(3, 1, 1)
    d = 6 / 29
    f = torch.where(xyz > d ** 3, xyz.clamp_min(1e-12) ** (1 / 3), xyz / (3 * d * d) + 4 / 29)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    L, a, b = lab.double().unbind(-3)
    fy = (L + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=-3)
    d = 6 / 29
    xyz = torch.where(f > d, f ** 3, 3 * d * d * (f - 4 / 29)) * _WHITE.reshape(3, 1, 1)
    lin = torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(_M_RGB2XYZ), xyz).clamp(0, 1)
    rgb = torch.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return rgb.clamp(0, 1).float()


def reinhard(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Per-channel mean/std transfer in Lab: [3, H, W] x [3, Hs, Ws] -> [3, H, W]."""
    lc, ls = rgb_to_lab(content), rgb_to_lab(style)
    mc, sc = lc.mean((-2, -1), keepdim=True), lc.std((-2, -1), keepdim=True).clamp_min(1e-6)
    ms, ss = ls.mean((-2, -1), keepdim=True), ls.std((-2, -1), keepdim=True)
    return lab_to_rgb((lc - mc) / sc * ss + ms)


# ---------------------------------------------------------------- metrics
def _luma(img):
    return (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None, None].double()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """SSIM of the luma of two [3, H, W] images in [0, 1] (Wang et al. 2004, Gaussian window)."""
    x, y = _luma(a), _luma(b)
    r = torch.arange(window, dtype=torch.float64) - window // 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :])[None, None]
    mu_x, mu_y = F.conv2d(x, k), F.conv2d(y, k)
    sxx = F.conv2d(x * x, k) - mu_x ** 2
    syy = F.conv2d(y * y, k) - mu_y ** 2
    sxy = F.conv2d(x * y, k) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    m = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return float(m.mean())


def sobel_magnitude(img: torch.Tensor) -> torch.Tensor:
    x = F.pad(_luma(img), (1, 1, 1, 1), mode="replicate")
    kx = torch.tensor([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64)[None, None]
    gx, gy = F.conv2d(x, kx), F.conv2d(x, kx.transpose(-1, -2))
    return (gx ** 2 + gy ** 2).sqrt().flatten()


def edge_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    ea, eb = sobel_magnitude(a), sobel_magnitude(b)
    ea, eb = ea - ea.mean(), eb - eb.mean()
    den = (ea.norm() * eb.norm()).clamp_min(1e-12)
    return float((ea * eb).sum() / den)


def rgb_uv_histogram(img: torch.Tensor, bins: int = 64, lim: float = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """Intensity-weighted RGB-uv log-chroma histogram, [3, bins, bins], sums to 1 (float64)."""
    x = img.double().clamp(0, 1).reshape(3, -1) + eps
    weight = x.pow(2).sum(0).sqrt()
    logs = x.log()
    hists = []
    for c in range(3):
        o1, o2 = [j for j in range(3) if j != c]
        u, v = logs[c] - logs[o1], logs[c] - logs[o2]
        iu = ((u + lim) / (2 * lim) * bins).floor().clamp(0, bins - 1).long()
        iv = ((v + lim) / (2 * lim) * bins).floor().clamp(0, bins - 1).long()
        h = torch.zeros(bins * bins, dtype=torch.float64).index_add_(0, iu * bins + iv, weight)
        hists.append(h.reshape(bins, bins))
    h = torch.stack(hists)
    return h / h.sum().clamp_min(1e-12)


def hellinger(p: torch.Tensor, q: torch.Tensor) -> float:
    bc = (p * q).sqrt().sum()
    return float((1 - bc).clamp_min(0).sqrt())


def histogram_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return hellinger(rgb_uv_histogram(a), rgb_uv_histogram(b))


def gram(feat: torch.Tensor) -> torch.Tensor:
    c = feat.shape[-3]
    f = feat.reshape(c, -1).double()
    return f @ f.T / f.shape[1]


def grams(vgg: PerceptualVGG, img: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return [gram(f[0]) for f in vgg(img[None])]


def gram_distance(vgg: PerceptualVGG, a: torch.Tensor, b: torch.Tensor, b_grams=None) -> float:
    """b_grams: grams(vgg, b), when the caller scores several outputs against the same style."""
    ga, gb = grams(vgg, a), b_grams if b_grams is not None else grams(vgg, b)
    d = [float((x - y).norm() / y.norm().clamp_min(1e-12)) for x, y in zip(ga, gb)]
    return sum(d) / len(d)


METRICS = ("ssim", "edge_corr", "hist_hellinger", "gram")


def score(vgg, out, content, style, style_grams=None) -> dict[str, float]:
    return {"ssim": ssim(out, content), "edge_corr": edge_correlation(out, content),
            "hist_hellinger": histogram_distance(out, style), "gram": gram_distance(vgg, out, style, style_grams)}


# ---------------------------------------------------------------- driver
def load_square(path, size: int) -> torch.Tensor:
    img = read_image(path, max_side=None)
    return F.interpolate(img[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def _runs(models: dict, strengths) -> dict:
    """{row label: (model, strength or None)}; labels carry `@strength` unless it is only 1."""
    strengths = [float(x) for x in strengths]
    bad = [x for x in strengths if not 0 <= x <= 1]
    if bad or not strengths:
        raise ValueError(f"strengths must be in [0, 1], got {strengths}")
    plain = strengths == [1.0]
    return {(label if plain else f"{label}@{st:g}"): (m, None if st == 1 else torch.tensor([st]))
            for label, m in models.items() for st in strengths}


def evaluate(model, contents, styles, vgg, sheet_rows: int = 6, log=print, strengths=(1.0,), pairs=None,
             sheet_size: int = 0):
    """model: MambaST, {label: MambaST} or None; contents/styles: lists of [3, H, W];
    strengths: style strengths in [0, 1] each model is scored at; pairs: [(content index, style index)]
    (default: every content with every style); sheet_size: contact-sheet tiles resized to this (0: as is).
    -> (means, per-pair rows, sheet)."""
    models = model if isinstance(model, dict) else ({} if model is None else {"model": model})
    runs = _runs(models, strengths)
    methods = ["content", "reinhard"] + list(runs)
    ncol = 3 + max(1, len(runs))
    rows, sheet = [], []
    pairs = pairs if pairs is not None else [(ci, si) for ci in range(len(contents)) for si in range(len(styles))]
    style_grams: dict[int, list] = {}
    tile = (lambda x: F.interpolate(x[None], size=(sheet_size, sheet_size), mode="bilinear", align_corners=False,
                                    antialias=True)[0]) if sheet_size else (lambda x: x)
    for ci, si in pairs:
        c, s = contents[ci], styles[si]
        if si not in style_grams:
            style_grams[si] = grams(vgg, s)
        t0 = time.time()
        outs = {"content": c, "reinhard": reinhard(c, s)}
        for label, (m, st) in runs.items():
            with torch.no_grad():
                outs[label] = m(c[None], s[None], seed=0, strength=st)[0].clamp(0, 1)
        for m in methods:
            rows.append({"content": ci, "style": si, "method": m, **score(vgg, outs[m], c, s, style_grams[si])})
        if len(sheet) < sheet_rows * ncol:
            sheet += [tile(x) for x in [c, s, outs["reinhard"]] + ([outs[label] for label in runs] or [c])]
        log(f"pair c{ci} s{si}: {time.time() - t0:.1f} s")
    means = {m: {k: sum(r[k] for r in rows if r["method"] == m) / sum(r["method"] == m for r in rows)
                 for k in METRICS} for m in methods}
    return means, rows, grid(sheet, ncol=ncol) if sheet else None


def table(means) -> str:
    lines = ["| method | SSIM (higher: more content) | edge corr (higher) | RGB-uv Hellinger to style (lower) | Gram dist to style (lower) |",
             "|---|---|---|---|---|"]
    for m, v in means.items():
        lines.append(f"| {m} | {v['ssim']:.3f} | {v['edge_corr']:.3f} | {v['hist_hellinger']:.3f} | {v['gram']:.3f} |")
    return "\n".join(lines)


def merge(folders) -> tuple[dict, list]:
    """Means over the per-pair rows of several results.json (shards of one pair list run in parallel
    processes; every pair is scored independently, so the means equal those of one run)."""
    rows, methods = [], None
    for d in folders:
        blob = json.loads((Path(d) / "results.json").read_text())
        ms = list(blob["means"])
        if methods is not None and ms != methods:
            raise ValueError(f"{d}: methods {ms} differ from {methods}")
        methods = ms
        rows += [dict(r, shard=str(d)) for r in blob["pairs"]]
    means = {m: {k: sum(r[k] for r in rows if r["method"] == m) / sum(r["method"] == m for r in rows)
                 for k in METRICS} for m in methods}
    return means, rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mambast.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", nargs="*", default=[], metavar="[LABEL=]PATH",
                   help="trained checkpoints (train.py last.pt), each optionally labelled; omit for baselines only")
    p.add_argument("--content", nargs="+", default=[])
    p.add_argument("--style", nargs="+", default=[])
    p.add_argument("--size", type=int, default=256, help="images are resized to size x size (multiple of 8)")
    p.add_argument("--max-content", type=int, default=0, help="first N content images (0: all)")
    p.add_argument("--max-style", type=int, default=0, help="first N style images (0: all)")
    p.add_argument("--strength", type=float, nargs="+", default=[1.0], metavar="S",
                   help="style strengths in [0, 1] to score each model at (default 1; 0 = reconstruction)")
    p.add_argument("--pairs", default=None, metavar="TSV",
                   help="score these (content path, style path) pairs (mambast.split's pairs.tsv) instead of "
                        "every --content with every --style")
    p.add_argument("--scan", default="sequential", choices=("sequential", "kernel"),
                   help="scan of the models (kernel: the C++ scan, same results to ~1e-5, faster on CPU)")
    p.add_argument("--sheet-rows", type=int, default=6)
    p.add_argument("--sheet-size", type=int, default=0, help="contact-sheet tile size (0: --size)")
    p.add_argument("--vgg-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="../artifacts/eval")
    p.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                   help="only combine the results.json of these runs (shards of one pair list) into --out")
    a = p.parse_args(argv)
    if a.merge:
        means, rows = merge(a.merge)
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        n = sum(r["method"] == "content" for r in rows)
        header = f"{n} pairs merged from {', '.join(a.merge)}"
        print(header)
        print(table(means))
        (out / "table.md").write_text(header + "\n\n" + table(means) + "\n")
        (out / "results.json").write_text(json.dumps({"header": header, "means": means, "pairs": rows}, indent=1))
        return
    if a.size % 8 or a.size < 16:
        raise SystemExit(f"--size must be a multiple of 8 and >= 16, got {a.size}")
    if any(not 0 <= x <= 1 for x in a.strength):
        raise SystemExit(f"--strength values must be in [0, 1], got {a.strength}")
    torch.set_num_threads(a.threads)
    pairs = None
    if a.pairs:
        from .split import read_pairs
        listed = read_pairs(a.pairs)
        cf = list(dict.fromkeys(c for c, _ in listed))
        sf = list(dict.fromkeys(s for _, s in listed))
        pairs = [(cf.index(c), sf.index(s)) for c, s in listed]
    elif not a.content or not a.style:
        raise SystemExit("give --content and --style, or --pairs")
    else:
        cf, sf = list_images(a.content), list_images(a.style)
        cf, sf = cf[:a.max_content or None], sf[:a.max_style or None]
    contents = [load_square(f, a.size) for f in cf]
    styles = [load_square(f, a.size) for f in sf]
    from .checkpoint import load_trained
    models, provs = {}, []
    for spec in a.checkpoint:
        label, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        label = label or ("model" if len(a.checkpoint) == 1 else Path(path).stem)
        if label in models or label in ("content", "reinhard"):
            raise SystemExit(f"duplicate or reserved label {label!r}: name checkpoints LABEL=PATH")
        models[label], prov = load_trained(path, scan_variant=a.scan)
        provs.append(f"{label}: {prov}")
    prov = "; ".join(provs) or "baselines only"
    vgg = random_vgg(a.vgg_seed)
    means, rows, sheet = evaluate(models, contents, styles, vgg, a.sheet_rows, strengths=a.strength, pairs=pairs,
                                  sheet_size=a.sheet_size)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    text = table(means)
    what = f"{len(pairs)} pairs ({a.pairs})" if pairs is not None else f"{len(contents)} content x {len(styles)} style images"
    header = (f"{what} at {a.size}x{a.size}; model: {prov}"
              + ("" if a.strength == [1.0] else f"; strengths {' '.join(f'{x:g}' for x in a.strength)}"))
    print(header)
    print(text)
    (out / "table.md").write_text(header + "\n\n" + text + "\n")
    (out / "results.json").write_text(json.dumps({"header": header, "means": means, "pairs": rows,
                                                  "content_files": [str(f) for f in cf],
                                                  "style_files": [str(f) for f in sf]}, indent=1))
    if sheet is not None:
        write_png(out / "contact_sheet.png", sheet)


if __name__ == "__main__":
    main()
