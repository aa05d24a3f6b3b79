"""Mamba-ST training losses (authors' recipe, MAMBA-ST.md), on a PerceptualVGG's five features."""
from __future__ import annotations

import torch
import torch.nn.functional as F

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


def content_loss(out_feats, content_feats):
    """MSE of mean/std-normalised features at relu4_1 and relu5_1."""
    return sum(F.mse_loss(normalise(o), normalise(c)) for o, c in zip(out_feats[3:], content_feats[3:]))


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
