"""Mamba-ST training losses (authors' recipe, MAMBA-ST.md), on a PerceptualVGG's five features."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .vgg import LAYERS

WEIGHTS = {"content": 7.0, "style": 10.0, "identity1": 70.0, "identity2": 1.0}


def mean_std(feat, eps=1e-5):
    b, c = feat.shape[:2]
    flat = feat.reshape(b, c, -1)
    mean = flat.mean(-1)
    std = (flat.var(-1, unbiased=True) + eps).sqrt()
    return mean.reshape(b, c, 1, 1), std.reshape(b, c, 1, 1)


def normalise(feat):
    mean, std = mean_std(feat)
    return (feat - mean) / std


CONTENT_LAYERS = ("relu4_1", "relu5_1")  # the authors' choice, for 256x256 crops


def scale_matched_content_layers(crop: int) -> tuple[str, ...]:
    """The two layers whose feature maps at `crop` have the sizes relu4_1 and relu5_1 have at the
    authors' 256 crops (32x32 and 16x16): each halving of the crop moves one layer shallower.
    At crop 64 that is relu2_1 and relu3_1; at 128, relu3_1 and relu4_1; at 256, the authors' pair."""
    shift = {256: 0, 128: 1, 64: 2, 32: 3}.get(crop)
    if shift is None:
        raise ValueError(f"no scale-matched content layers for crop {crop} (one of 256, 128, 64, 32)")
    return LAYERS[3 - shift:5 - shift]


def content_loss(out_feats, content_feats, layers=CONTENT_LAYERS):
    """MSE of mean/std-normalised features at `layers` (authors: relu4_1 and relu5_1)."""
    idx = [LAYERS.index(name) for name in layers]
    return sum(F.mse_loss(normalise(out_feats[i]), normalise(content_feats[i])) for i in idx)


def style_loss(out_feats, style_feats):
    """Over relu1_1..relu5_1: MSE of channel means + MSE of channel stds."""
    total = 0.0
    for o, s in zip(out_feats, style_feats):
        om, osd = mean_std(o)
        sm, ssd = mean_std(s)
        total = total + F.mse_loss(om, sm) + F.mse_loss(osd, ssd)
    return total


def identity_losses(icc, iss, content, style, icc_feats, iss_feats, content_feats, style_feats):
    l1 = F.mse_loss(icc, content) + F.mse_loss(iss, style)
    l2 = sum(F.mse_loss(a, b) + F.mse_loss(c, d)
             for a, b, c, d in zip(icc_feats, content_feats, iss_feats, style_feats))
    return l1, l2


def total_loss(parts: dict, weights=WEIGHTS):
    return sum(weights[k] * parts[k] for k in weights)
