"""Loading the authors' three checkpoint files and this project's own checkpoints."""
from __future__ import annotations

import re

import torch

from .config import get_config
from .model import MambaST, build_model

# checkpoint file stem -> child module of MambaST holding its tensors
PARTS = {"embedding": "embedding", "mamba": "mamba", "decoder": "decoder"}


def load_file(path):
    """torch.load, on the CPU, of a checkpoint this project wrote (train.py, devicekit, save_trained).
    weights_only is explicit so that PyTorch 1.13 here and 2.x on the GPU machine (whose default
    became weights_only=True in 2.6) load these files the same way; they are our own files. The
    authors' downloaded .pth files go through torch.load's default instead (_state_dict)."""
    return torch.load(path, map_location="cpu", weights_only=False)


def _state_dict(path_or_dict):
    if isinstance(path_or_dict, dict):
        return path_or_dict
    sd = torch.load(path_or_dict, map_location="cpu")  # third-party file: the version's safe default
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


def load_parts(model: MambaST, embedding, mamba, decoder) -> MambaST:
    """Load the three state dicts (paths or dicts) strictly into model.embedding/.mamba/.decoder."""
    for module, sd in ((model.embedding, embedding), (model.mamba, mamba), (model.decoder, decoder)):
        module.load_state_dict(_state_dict(sd), strict=True)
    return model.eval()


def load_official(embedding_pth, mamba_pth, decoder_pth, scan_variant="parallel") -> MambaST:
    """The authors' embedding_iter_N.pth, mamba_iter_N.pth, decoder_iter_N.pth -> `base` model."""
    model = build_model(get_config("base"), scan_variant=scan_variant)
    return load_parts(model, embedding_pth, mamba_pth, decoder_pth)


def official_iteration(path) -> str:
    m = re.search(r"iter_(\d+)", str(path))
    return m.group(1) if m else "unknown"


def save_trained(model: MambaST, path, provenance: str = "trained") -> None:
    """This project's single-file checkpoint: {'config', 'provenance', 'state_dict'}."""
    torch.save({"config": model.cfg.name, "provenance": provenance, "state_dict": model.state_dict()}, path)


def load_trained(path, config=None, scan_variant="parallel"):
    """-> (model, provenance). Accepts save_trained files or a bare MambaST state dict."""
    blob = load_file(path)
    if "state_dict" in blob:
        sd, name, prov = blob["state_dict"], blob.get("config", config), blob.get("provenance", "trained")
    else:
        sd, name, prov = blob, config, "trained"
    if name is None:
        raise ValueError("checkpoint does not name its config; pass --config")
    model = build_model(get_config(name), scan_variant=scan_variant)
    model.load_state_dict(sd, strict=True)
    return model.eval(), prov
