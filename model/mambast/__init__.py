"""Mamba-ST (WACV 2025) for inference, PyTorch + ONNX export. Clean-room implementation."""
from .config import CONFIGS, MambaSTConfig, get_config
from .model import MambaST, build_model
from .scan import selective_scan
from .style_index import style_index

__all__ = ["CONFIGS", "MambaSTConfig", "get_config", "MambaST", "build_model", "selective_scan",
           "style_index"]
