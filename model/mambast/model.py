"""Clean-room PyTorch implementation of Mamba-ST inference (see /work/shared/docs/MAMBA-ST.md).

Parameter names and shapes equal the authors' checkpoints: the model has three children whose
state dicts mirror the three checkpoint files: `embedding` (embedding_iter_N.pth), `mamba`
(mamba_iter_N.pth) and `decoder` (decoder_iter_N.pth, an nn.Sequential).

Token tensors are kept as grids [B, H/8, W/8, C] (row-major), so every piece knows its spatial size.
"""
from __future__ import annotations

import math

import torch
import torch.utils.checkpoint
import torch.nn as nn
import torch.nn.functional as F

from .config import PATCH_SIZE, SCANS, MambaSTConfig
from .scan import DEFAULT_CHUNK, selective_scan


class ScanSettings:
    """Shared, mutable scan choice: one object referenced by every SS2D of a model.

    `recompute`: under autograd, keep only the scan's inputs and recompute its internals in the
    backward pass (activation checkpointing); the scan's per-token states are the bulk of training
    memory (numbers in model/README.md, "Training on the lent GPU machine")."""

    def __init__(self, variant: str = "parallel", chunk: int = DEFAULT_CHUNK, recompute: bool = False):
        self.variant = variant
        self.chunk = chunk
        self.recompute = recompute


def _four_directions(x):
    """[B, D, H, W] -> [B, K=4, D, L]: row-major, column-major, reversed row, reversed column."""
    row = x.flatten(2)
    col = x.transpose(2, 3).flatten(2)
    pair = torch.stack([row, col], dim=1)
    return torch.cat([pair, pair.flip(-1)], dim=1)


def _merge_directions(y, h, w):
    """[B, K=4, D, L] -> [B, D, L] (row-major): map every scan back and sum."""
    b, _, d, length = y.shape
    row = y[:, 0] + y[:, 2].flip(-1)
    col = y[:, 1] + y[:, 3].flip(-1)
    col = col.reshape(b, d, w, h).transpose(2, 3).reshape(b, d, length)
    return row + col


class SS2D(nn.Module):
    def __init__(self, cfg: MambaSTConfig, cross: bool, scan: ScanSettings):
        super().__init__()
        d, din, n, r, k = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.rank, SCANS
        self.cross, self.scan, self.d_state, self.rank = cross, scan, n, r
        self.in_proj = nn.Linear(d, 2 * din, bias=False)
        # Stored in every block of the authors' checkpoints; used only in cross mode.
        self.in_style_proj = nn.Linear(d, din, bias=False)
        self.conv2d = nn.Conv2d(din, din, 3, padding=1, groups=din, bias=True)
        if cross:
            self.style_proj_weight = nn.Parameter(torch.empty(k, r + n, din))
            self.x_proj_weight = nn.Parameter(torch.empty(k, n, din))
        else:
            self.x_proj_weight = nn.Parameter(torch.empty(k, r + 2 * n, din))
        self.dt_projs_weight = nn.Parameter(torch.empty(k, din, r))
        self.dt_projs_bias = nn.Parameter(torch.empty(k, din))
        self.A_logs = nn.Parameter(torch.empty(k * din, n))
        self.Ds = nn.Parameter(torch.empty(k * din))
        self.out_norm = nn.LayerNorm(din, eps=cfg.ln_eps)
        self.out_proj = nn.Linear(din, d, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, dt_min=1e-3, dt_max=0.1, dt_init_floor=1e-4):
        """Mamba's initialisation (S4D-real A, delta in [dt_min, dt_max])."""
        k, din, r = self.dt_projs_weight.shape
        bound = 1.0 / math.sqrt(din)
        if self.cross:
            self.style_proj_weight.uniform_(-bound, bound)
        self.x_proj_weight.uniform_(-bound, bound)
        self.dt_projs_weight.uniform_(-r ** -0.5, r ** -0.5)
        dt = torch.exp(torch.rand(k, din) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        a = torch.arange(1, self.d_state + 1, dtype=torch.float32)
        self.A_logs.copy_(torch.log(a).expand(k * din, -1))
        self.Ds.fill_(1.0)

    def forward(self, x, style=None):
        """x: [B, H, W, d] (layer-normed content); style: [B, H, W, d] style tokens on the content grid."""
        b, h, w, _ = x.shape
        n, r = self.d_state, self.rank
        xz = self.in_proj(x)
        x, z = xz.chunk(2, dim=-1)
        x = F.silu(self.conv2d(x.permute(0, 3, 1, 2)))                  # [B, Din, H, W]
        xs = _four_directions(x)                                          # [B, K, Din, L]
        if self.cross:
            s = F.silu(self.conv2d(self.in_style_proj(style).permute(0, 3, 1, 2)))
            us = _four_directions(s)
            s_dbl = torch.matmul(self.style_proj_weight, us)              # [B, K, R+N, L]
            dts, Bs = torch.split(s_dbl, [r, n], dim=2)
            Cs = torch.matmul(self.x_proj_weight, xs)                     # [B, K, N, L]
        else:
            us = xs
            x_dbl = torch.matmul(self.x_proj_weight, xs)                  # [B, K, R+2N, L]
            dts, Bs, Cs = torch.split(x_dbl, [r, n, n], dim=2)
        dts = torch.matmul(self.dt_projs_weight, dts)                     # [B, K, Din, L]
        variant, chunk = self.scan.variant, self.scan.chunk

        def scan(u, delta, A, B, C, D, bias):
            return selective_scan(u, delta, A, B, C, D, bias, delta_softplus=True, scan_variant=variant, chunk=chunk)
        args = (us.flatten(1, 2), dts.flatten(1, 2), -torch.exp(self.A_logs), Bs, Cs, self.Ds,
                self.dt_projs_bias.flatten())
        if self.scan.recompute and torch.is_grad_enabled() and variant != "export":
            y = torch.utils.checkpoint.checkpoint(scan, *args, use_reentrant=False)
        else:
            y = scan(*args)
        y = _merge_directions(y.reshape(b, SCANS, -1, y.shape[-1]), h, w)  # [B, Din, L]
        y = self.out_norm(y.transpose(1, 2).reshape(b, h, w, -1))          # [B, H, W, Din]
        return self.out_proj(y * F.silu(z))


class VSSBlock(nn.Module):
    def __init__(self, cfg: MambaSTConfig, cross: bool, scan: ScanSettings):
        super().__init__()
        d = cfg.d_model
        self.ln_1 = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.self_attention = SS2D(cfg, cross, scan)
        self.skip_scale = nn.Parameter(torch.ones(d))
        self.skip_scale2 = nn.Parameter(torch.ones(d))  # stored by the authors, unused at inference
        self.norm = nn.LayerNorm(d, eps=cfg.ln_eps)

    def forward(self, x, style=None):
        y = self.self_attention(self.ln_1(x), style)
        return self.norm(x * self.skip_scale + y)


class Encoder(nn.Module):
    def __init__(self, cfg, depth, scan):
        super().__init__()
        self.layers = nn.ModuleList(VSSBlock(cfg, False, scan) for _ in range(depth))

    def forward(self, x):
        for blk in self.layers:
            x = blk(x) + x
        return x


class STDecoder(nn.Module):
    def __init__(self, cfg, depth, scan):
        super().__init__()
        self.layers = nn.ModuleList(VSSBlock(cfg, True, scan) for _ in range(depth))
        self.norm = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)

    def forward(self, x, style_grid):
        for blk in self.layers:
            x = blk(x, style_grid) + x
        return self.norm(x)


class MambaCore(nn.Module):
    """Contents of mamba_iter_N.pth."""

    def __init__(self, cfg: MambaSTConfig, scan: ScanSettings):
        super().__init__()
        self.encoder_c = Encoder(cfg, cfg.depth_content, scan)
        self.encoder_s = Encoder(cfg, cfg.depth_style, scan)
        self.decoder = STDecoder(cfg, cfg.depth_decoder, scan)
        self.new_ps = nn.Conv2d(cfg.d_model, cfg.d_model, 1)  # stored by the authors, unused


class PatchEmbed(nn.Module):
    """Contents of embedding_iter_N.pth: Conv2d(3, d, 8, stride 8). Returns [B, H/8, W/8, d]."""

    def __init__(self, cfg: MambaSTConfig):
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.d_model, PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, img):
        return self.proj(img).permute(0, 2, 3, 1)


def cnn_decoder(cfg: MambaSTConfig) -> nn.Sequential:
    """StyTR-2 decoder; Sequential indices of the convs: 1, 5, 8, 11, 14, 18, 21, 25, 28."""
    w1, w2, w3 = cfg.cnn_widths

    def conv(cin, cout, relu=True):
        mods = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
        return mods + [nn.ReLU()] if relu else mods

    up = [nn.Upsample(scale_factor=2, mode="nearest")]
    layers = (conv(cfg.d_model, w1) + up + conv(w1, w1) + conv(w1, w1) + conv(w1, w1) + conv(w1, w2)
              + up + conv(w2, w2) + conv(w2, w3) + up + conv(w3, w3) + conv(w3, 3, relu=False))
    return nn.Sequential(*layers)


def check_image(x, name, min_side):
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must be [B, 3, H, W], got {tuple(x.shape)}")
    h, w = int(x.shape[2]), int(x.shape[3])
    if h % PATCH_SIZE or w % PATCH_SIZE or h < min_side or w < min_side:
        raise ValueError(f"{name} height and width must be multiples of {PATCH_SIZE} and >= {min_side}, got {h}x{w}")


MIN_CONTENT_SIDE = 16  # the CNN decoder reflection-pads the H/8 x W/8 grid by 1, so it needs >= 2
MIN_STYLE_SIDE = 8


def gather_style(style_tokens, style_index, grid_like):
    """style_tokens [B, Ls, d], style_index int64 [B, L] -> style tokens on the content grid [B, H, W, d]."""
    idx = style_index.unsqueeze(-1).expand(-1, -1, style_tokens.shape[-1])
    return torch.gather(style_tokens, 1, idx).reshape(grid_like.shape)


class MambaST(nn.Module):
    def __init__(self, cfg: MambaSTConfig, scan_variant: str = "parallel", chunk: int = DEFAULT_CHUNK):
        super().__init__()
        self.cfg = cfg
        self.scan = ScanSettings(scan_variant, chunk)
        self.embedding = PatchEmbed(cfg)
        self.mamba = MambaCore(cfg, self.scan)
        self.decoder = cnn_decoder(cfg)
        for m in self.decoder:
            if isinstance(m, nn.Conv2d):  # variance-preserving, so a random-init model is not flat
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    # ---- the pieces the ONNX graphs are made of -------------------------------------------
    def encode_style(self, style):
        """style [B, 3, Hs, Ws] -> style_tokens [B, Ls, d] (row-major over the Hs/8 x Ws/8 grid)."""
        check_image(style, "style", MIN_STYLE_SIDE)
        return self.mamba.encoder_s(self.embedding(style)).flatten(1, 2)

    def stylize_main(self, content, style_tokens, style_index):
        """-> (content patch embedding, content encoder output, ST-decoder output for (c, s))."""
        check_image(content, "content", MIN_CONTENT_SIDE)
        emb = self.embedding(content)
        x_c = self.mamba.encoder_c(emb)
        f_cs = self.mamba.decoder(x_c, gather_style(style_tokens, style_index, x_c))
        return emb, x_c, f_cs

    def content_identity(self, emb, x_c):
        """ST-decoder output for (c, c): the style encoder run on the content, tokens in place."""
        return self.mamba.decoder(x_c, self.mamba.encoder_s(emb))

    def render(self, f):
        """[B, H/8, W/8, d] -> image [B, 3, H, W] (unclamped)."""
        return self.decoder(f.permute(0, 3, 1, 2))

    # ---- whole model ----------------------------------------------------------------------
    def stylize(self, content, style_tokens, style_index, strength=None):
        emb, x_c, f_cs = self.stylize_main(content, style_tokens, style_index)
        f = f_cs
        if strength is not None and bool((strength < 1).any()):
            f_cc = self.content_identity(emb, x_c)
            s = strength.reshape(-1, 1, 1, 1)
            f = (1 - s) * f_cc + s * f_cs
        return self.render(f)

    def forward(self, content, style, seed=0, strength=None):
        from .style_index import style_index
        b, _, h, w = content.shape
        tokens = self.encode_style(style)
        seeds = [seed] * b if isinstance(seed, int) else list(seed)
        idx = torch.stack([torch.from_numpy(style_index(sd, tokens.shape[1], (h // 8) * (w // 8)))
                           for sd in seeds]).to(tokens.device)
        return self.stylize(content, tokens, idx, strength)


def build_model(cfg: MambaSTConfig, seed: int = 0, scan_variant: str = "parallel",
                chunk: int = DEFAULT_CHUNK) -> MambaST:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MambaST(cfg, scan_variant, chunk).eval()
