"""Analytic cost model: parameters, ONNX weight bytes and FLOPs per image.

    cd model && python -m mambast.flops [--size 512]

FLOPs = 2 x multiply-accumulates of convolutions and matmuls + elementwise work of the selective
scan (7 FLOPs per state update: exp, 2 mul for the decay, 2 mul + 1 add for the input, 1 mul + 1
add for the C contraction, exp counted as one); layer norms and activations are ignored (<1%).
"""
from __future__ import annotations

import argparse

from .config import CONFIGS, PATCH_SIZE, SCANS, MambaSTConfig

SCAN_FLOPS_PER_UPDATE = 7


def ss2d_flops(cfg: MambaSTConfig, L: int, cross: bool) -> dict[str, float]:
    d, din, n, r, k = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.rank, SCANS
    mac = L * d * 2 * din + L * din * 9 + L * din * d + k * L * din * r       # in, dwconv, out, dt proj
    if cross:
        mac += L * d * din + L * din * 9 + k * L * (r + n) * din + k * L * n * din
    else:
        mac += k * L * (r + 2 * n) * din
    scan = SCAN_FLOPS_PER_UPDATE * k * din * n * L
    return {"proj": 2.0 * mac, "scan": float(scan)}


def cnn_flops(cfg: MambaSTConfig, h: int, w: int) -> float:
    w1, w2, w3 = cfg.cnn_widths
    g = (h // 8) * (w // 8)
    convs = [(cfg.d_model, w1, g), (w1, w1, 4 * g), (w1, w1, 4 * g), (w1, w1, 4 * g), (w1, w2, 4 * g),
             (w2, w2, 16 * g), (w2, w3, 16 * g), (w3, w3, 64 * g), (w3, 3, 64 * g)]
    return 2.0 * sum(cin * cout * 9 * px for cin, cout, px in convs)


def model_flops(cfg: MambaSTConfig, h: int, w: int, hs: int | None = None, ws: int | None = None,
                strength_below_one: bool = False) -> dict[str, float]:
    hs, ws = hs or h, ws or w
    L, Ls = (h // 8) * (w // 8), (hs // 8) * (ws // 8)
    embed = lambda tokens: 2.0 * tokens * cfg.d_model * 3 * PATCH_SIZE ** 2  # noqa: E731

    def blocks(depth, tokens, cross):
        f = ss2d_flops(cfg, tokens, cross)
        return depth * (f["proj"] + f["scan"]), depth * f["scan"]

    enc_s, enc_s_scan = blocks(cfg.depth_style, Ls, False)
    enc_c, enc_c_scan = blocks(cfg.depth_content, L, False)
    dec, dec_scan = blocks(cfg.depth_decoder, L, True)
    style_encoder = embed(Ls) + enc_s
    stylizer = embed(L) + enc_c + dec + cnn_flops(cfg, h, w)
    if strength_below_one:
        stylizer += blocks(cfg.depth_style, L, False)[0] + dec
    return {"style_encoder": style_encoder, "stylizer": stylizer, "total": style_encoder + stylizer,
            "cnn_decoder": cnn_flops(cfg, h, w), "scan": enc_s_scan + enc_c_scan + dec_scan}


def onnx_weight_count(cfg: MambaSTConfig) -> dict[str, int]:
    """Floats stored in each ONNX file (the unused stored tensors are not exported)."""
    import torch  # noqa: F401  (only to build the module)
    from .model import build_model
    m = build_model(cfg)
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    unused_block = lambda blk: blk.skip_scale2.numel() + (  # noqa: E731
        0 if blk.self_attention.cross else blk.self_attention.in_style_proj.weight.numel())
    enc_s = count(m.mamba.encoder_s) - sum(unused_block(b) for b in m.mamba.encoder_s.layers)
    enc_c = count(m.mamba.encoder_c) - sum(unused_block(b) for b in m.mamba.encoder_c.layers)
    dec = count(m.mamba.decoder) - sum(unused_block(b) for b in m.mamba.decoder.layers)
    emb, cnn = count(m.embedding), count(m.decoder)
    return {"params_total": count(m), "style_encoder": emb + enc_s, "stylizer": emb + enc_c + enc_s + dec + cnn}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mambast.flops", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=512)
    a = p.parse_args(argv)
    base = model_flops(CONFIGS["base"], a.size, a.size)["total"]
    print(f"| config | params (M) | ONNX weights (MB fp32) | GFLOP/image at {a.size}x{a.size} (style enc + stylizer) "
          f"| with strength < 1 | vs base |")
    print("|---|---|---|---|---|---|")
    for name, cfg in CONFIGS.items():
        f = model_flops(cfg, a.size, a.size)
        f2 = model_flops(cfg, a.size, a.size, strength_below_one=True)
        w = onnx_weight_count(cfg)
        mb = 4 * (w["style_encoder"] + w["stylizer"]) / 1e6
        print(f"| {name} | {w['params_total'] / 1e6:.2f} | {mb:.1f} | {f['total'] / 1e9:.1f} "
              f"({f['style_encoder'] / 1e9:.1f} + {f['stylizer'] / 1e9:.1f}) | {f2['total'] / 1e9:.1f} "
              f"| {f['total'] / base:.2f} |")


if __name__ == "__main__":
    main()
