"""Model configurations. `base` is the paper's model; `small` and `tiny` are this project's."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

PATCH_SIZE = 8
SCANS = 4  # K: row-major, column-major, and both reversed


@dataclass(frozen=True)
class MambaSTConfig:
    name: str
    d_model: int = 512
    expand: int = 2
    d_state: int = 16
    dt_rank: int = 0  # 0: ceil(d_model / 16), as in Mamba
    depth_content: int = 3
    depth_style: int = 3
    depth_decoder: int = 3
    # CNN decoder widths (w1, w2, w3): d->w1, up, w1->w1 x3, w1->w2, up, w2->w2, w2->w3, up, w3->w3, w3->3
    cnn_widths: tuple = (256, 128, 64)
    ln_eps: float = 1e-5

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)


CONFIGS = {
    "base": MambaSTConfig("base"),
    "small": MambaSTConfig("small", d_model=256, depth_content=2, depth_style=2, depth_decoder=2,
                           cnn_widths=(128, 64, 32)),
    # golden tests: every code path of base at a few KB (expand 1 keeps the ONNX files small)
    "tiny": MambaSTConfig("tiny", d_model=32, expand=1, depth_content=1, depth_style=1,
                          depth_decoder=1, cnn_widths=(8, 8, 8)),
}


def get_config(name: str) -> MambaSTConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; expected one of {sorted(CONFIGS)}") from None
