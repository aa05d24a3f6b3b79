"""Perceptual network for the training losses and the evaluation: the authors' normalised VGG-19
layout up to relu5_1 (a 1x1 conv 3->3, then reflection-padded 3x3 convs, max-pools with ceil_mode).

`perceptual_vgg(path)` loads `vgg_normalised.pth` (keys = nn.Sequential indices) when a path is given.
Without one it builds a fixed, seeded random-weight VGG-19 (random-network style statistics: He, Wang
and Hopcroft, NeurIPS 2016; Ustyuzhaninov et al. 2016): Kaiming-uniform 3x3 convs, zero biases, then
each conv is rescaled once so that its post-ReLU output has unit RMS on a fixed seeded calibration
batch, so activations neither vanish nor explode across the 16 layers. Deterministic for a seed.
The losses of a random VGG are weaker guides than a trained VGG's, which is the main reason a model
trained here is weaker than the authors'.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# (in, out) of the 3x3 convs up to relu5_1; "M" = max-pool
_PLAN = [(3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256), (256, 256), (256, 256), "M",
         (256, 512), (512, 512), (512, 512), (512, 512), "M", (512, 512)]
_SLICE_ENDS = (4, 11, 18, 31, 44)  # authors' enc_1..enc_5 = vgg[:4], [4:11], [11:18], [18:31], [31:44]


def _layers() -> nn.Sequential:
    mods: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    for item in _PLAN:
        if item == "M":
            mods.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
        else:
            mods += [nn.ReflectionPad2d(1), nn.Conv2d(item[0], item[1], 3), nn.ReLU()]
    assert len(mods) == 44, len(mods)
    return nn.Sequential(*mods)


def calibration_batch(seed: int, n: int = 4, size: int = 64) -> torch.Tensor:
    """Smooth random images in [0, 1] (upsampled noise + gradients), deterministic for the seed."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        coarse = torch.rand(1, 3, 4 * (i + 1), 4 * (i + 1), generator=g)
        img = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
        img = 0.8 * img + 0.2 * torch.rand(1, 3, size, size, generator=g)
        out.append(img)
    return torch.cat(out).clamp(0, 1)


class PerceptualVGG(nn.Module):
    """features(x) -> [relu1_1, relu2_1, relu3_1, relu4_1, relu5_1] for images in [0, 1]. Frozen."""

    def __init__(self, layers: nn.Sequential, description: str):
        super().__init__()
        self.vgg = layers
        self.description = description
        starts = (0,) + _SLICE_ENDS[:-1]
        self.slices = [(a, b) for a, b in zip(starts, _SLICE_ENDS)]
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def forward(self, x):
        feats = []
        for a, b in self.slices:
            for i in range(a, b):
                x = self.vgg[i](x)
            feats.append(x)
        return feats


def random_vgg(seed: int = 0) -> PerceptualVGG:
    layers = _layers()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        first = layers[0]
        first.weight.zero_()
        first.weight[:, :, 0, 0] = torch.eye(3)
        first.bias.fill_(-0.5)  # centre [0, 1] inputs
        for m in layers:
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                fan_in = m.in_channels * 9
                bound = (6.0 / fan_in) ** 0.5  # Kaiming-uniform, gain sqrt(2)
                m.weight.copy_((torch.rand(m.weight.shape, generator=g) * 2 - 1) * bound)
                m.bias.zero_()
        # one-off normalisation: unit RMS after each ReLU on the calibration batch
        x = calibration_batch(seed + 1)
        for i, m in enumerate(layers):
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                y = F.relu(m(x))
                rms = y.pow(2).mean().sqrt().clamp_min(1e-8)
                m.weight.div_(rms)
            x = m(x)
    return PerceptualVGG(layers, f"random VGG-19 seed {seed}")


def load_vgg(path) -> PerceptualVGG:
    layers = _layers()
    sd = torch.load(path, map_location="cpu")
    keep = {k: v for k, v in sd.items() if int(k.split(".")[0]) < 44}
    layers.load_state_dict(keep, strict=True)
    return PerceptualVGG(layers, f"vgg_normalised weights from {path}")


def perceptual_vgg(path=None, seed: int = 0) -> PerceptualVGG:
    return load_vgg(path) if path else random_vgg(seed)
