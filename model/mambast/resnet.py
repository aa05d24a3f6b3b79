"""ImageNet ResNet-18 as a training loss network, beside the random VGG of `vgg.py`.

The weights are ML.NET's `Microsoft.ML.DnnImageFeaturizer.ResNet18` 0.24.0 (MIT): a CNTK export to
ONNX opset 8 (`tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx`). `model/tools/resnet18/fetch.sh`
restores the package with a restore-only project that no product project references; `default_path()`
finds the file in the NuGet cache. The graph is read with `onnx` and interpreted here in PyTorch: it
only has Conv (with CNTK's asymmetric pads), BatchNormalization (inference), Relu, MaxPool, Add and
the final AveragePool.

Preprocessing follows the package's `ResNetPreprocess.onnx`: RGB -> BGR, 0-255, minus a mean image.
The mean image is 224x224; its per-channel means (BGR 103.06, 115.90, 123.15; spatial std 3-6) are
used instead, so any input size works.

Five taps, comparable to relu1_1..relu5_1 (positional: the losses index them by those names): the stem
ReLU (1/2 resolution, 64 channels) and the output of each of the four stages (1/4, 1/8, 1/16, 1/32;
64, 128, 256, 512 channels). Each tap is divided by a fixed scale that gives it unit RMS on a seeded
calibration batch, as `vgg.random_vgg` does per layer, so the recipe's loss weights (7 / 10 / 70 / 1)
keep their balance.

`blur=True` (default for training) low-passes the input of every stride-2 Conv and of the MaxPool with
a [1, 2, 1]^2 / 16 filter (Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019):
the gradient of a stride-2 layer with respect to its input is otherwise a checkerboard, which the
generator learns to paint. `swag=True` replaces each tap by a softmax over the whole activation of
an image (C*H*W values; Wang, Li and Vasconcelos, CVPR 2021, arXiv 2104.05623), scaled by C*H*W so its
mean is 1, before the style statistics: it flattens the few large activations that make ResNet
features peaky.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

PACKAGE = "microsoft.ml.dnnimagefeaturizer.resnet18"
VERSION = "0.24.0"
RELPATH = "tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx"
BGR_MEAN = (103.06262, 115.902885, 123.15163)  # channel means of ResNetPreprocess.onnx's MeanImage
OPS = {"Conv", "BatchNormalization", "Relu", "MaxPool", "Add", "AveragePool"}


def default_path() -> Path:
    """ResNet18.onnx from $MAMBAST_RESNET18 or the NuGet cache (model/tools/resnet18/fetch.sh)."""
    env = os.environ.get("MAMBAST_RESNET18")
    if env:
        return Path(env)
    root = Path(os.environ.get("NUGET_PACKAGES", Path.home() / ".nuget" / "packages"))
    p = root / PACKAGE / VERSION / RELPATH
    if not p.exists():
        raise FileNotFoundError(f"{p} not found: run model/tools/resnet18/fetch.sh (or set MAMBAST_RESNET18)")
    return p


def _pad(x, pads, value=0.0):
    # ONNX pads = [top, left, bottom, right]; CNTK exports pad asymmetrically (e.g. 3, 3, 2, 2)
    t, l, b, r = pads
    return F.pad(x, (l, r, t, b), value=value) if any(pads) else x


class ResNet18Features(nn.Module):
    """features(x) -> five taps for RGB images in [0, 1], [B, 3, H, W]. Frozen."""

    def __init__(self, path=None, blur: bool = False, normalise: bool = True,
                 calibration_seed: int = 1):
        super().__init__()
        import onnx
        from onnx import numpy_helper
        path = Path(path) if path else default_path()
        g = onnx.load(str(path)).graph
        self.input_name = g.input[0].name
        self.weights = nn.ParameterDict()
        names = {}
        for init in g.initializer:
            key = f"w{len(names)}"
            names[init.name] = key
            self.weights[key] = nn.Parameter(torch.from_numpy(numpy_helper.to_array(init).copy()), requires_grad=False)
        self.nodes = []
        for n in g.node:
            if n.op_type not in OPS:
                raise ValueError(f"{path}: unsupported op {n.op_type}")
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            self.nodes.append((n.op_type, [names.get(i, i) for i in n.input], n.output[0], attrs))
        relus = [o for op, _, o, _ in self.nodes if op == "Relu"]
        down = [i[0] for op, i, _, a in self.nodes if op == "Conv" and a["kernel_shape"] == [1, 1]
                and a["strides"] == [2, 2]]
        pool_in = [i[0] for op, i, _, _ in self.nodes if op == "AveragePool"]
        self.taps = [relus[0]] + down + pool_in
        if len(self.taps) != 5:
            raise ValueError(f"{path}: expected 5 taps (stem + 4 stages), found {self.taps}")
        self.blur = blur
        self.register_buffer("mean", torch.tensor(BGR_MEAN).reshape(1, 3, 1, 1))
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("blur_kernel", (k[:, None] * k[None, :] / 16)[None, None])
        self.register_buffer("scales", torch.ones(5))
        self.description = f"ImageNet ResNet-18 (ML.NET {VERSION})" + (" +blur" if blur else "")
        if normalise:
            from .vgg import calibration_batch
            with torch.no_grad():
                feats = self.taps_of(calibration_batch(calibration_seed))
                self.scales.copy_(torch.stack([f.pow(2).mean().sqrt().clamp_min(1e-8) for f in feats]))
        self.eval()

    def preprocess(self, x):
        return x.flip(1) * 255.0 - self.mean

    def _lowpass(self, x):
        c = x.shape[1]
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.blur_kernel.expand(c, 1, 3, 3), groups=c)

    def run(self, x, outputs):
        """Interpret the graph on a preprocessed input; returns {name: tensor} for `outputs`."""
        env = {self.input_name: x}
        w = self.weights
        missing = set(outputs)
        for op, ins, out, a in self.nodes:
            if not missing:
                break  # nothing after the last stage is needed for the taps
            v = env[ins[0]]
            if op == "Conv":
                stride = a.get("strides", [1, 1])
                if self.blur and stride != [1, 1]:
                    v = self._lowpass(v)
                y = F.conv2d(_pad(v, a.get("pads", [0, 0, 0, 0])), w[ins[1]], w[ins[2]] if len(ins) > 2 else None,
                             stride=stride, dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
            elif op == "BatchNormalization":
                y = F.batch_norm(v, w[ins[3]], w[ins[4]], w[ins[1]], w[ins[2]], False, 0.0, a.get("epsilon", 1e-5))
            elif op == "Relu":
                y = F.relu(v)
            elif op == "Add":
                y = v + env[ins[1]]
            elif op == "MaxPool":
                if self.blur:
                    v = self._lowpass(v)
                y = F.max_pool2d(_pad(v, a.get("pads", [0, 0, 0, 0]), float("-inf")), a["kernel_shape"], a["strides"])
            else:  # AveragePool (only after the last tap; kept for the reference test)
                y = F.avg_pool2d(_pad(v, a.get("pads", [0, 0, 0, 0])), a["kernel_shape"], a.get("strides", [1, 1]))
            env[out] = y
            missing.discard(out)
        return {k: env[k] for k in outputs}

    def taps_of(self, x):
        got = self.run(self.preprocess(x), self.taps)
        return [got[k] for k in self.taps]

    def forward(self, x):
        return [f / s for f, s in zip(self.taps_of(x), self.scales)]


def swag(f: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax over the H*W positions of each channel, times H*W (so each channel's mean is 1 and
    only the shape of its spatial distribution is left for the std statistics)."""
    b, c, h, w = f.shape
    return (F.softmax(f.reshape(b, c, -1) / temperature, dim=-1) * (h * w)).reshape(f.shape)


def resnet18(path=None, blur: bool = True) -> ResNet18Features:
    return ResNet18Features(path, blur=blur)
