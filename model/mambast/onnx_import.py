"""Recover PyTorch weights from an exported model folder (style_encoder.onnx + stylizer.onnx).

The bundled model is committed as ONNX only (the 25 MB budget has no room for a second copy of the
weights), and training checkpoints live in git-ignored folders that a fresh machine does not have.
To continue training the bundled model elsewhere (the GPU machine), its weights are read back:

1. build a model of the folder's config and give every parameter distinct random values (markers);
2. export it with this repository's exporter, the same code that wrote the folder, so the graphs
   carry the same initializer names; find which parameter, and whether as-is or transposed (MatMul
   weights), each initializer of the marker export holds;
3. read the folder's initializers under those names and invert the mapping;
4. verify: export the recovered model again and require every initializer to equal the folder's,
   bit for bit. Parameters the graphs never use (e.g. skip_scale2 of the style encoder) keep their
   seed-0 initial values; they do not affect any output.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from .config import get_config
from .model import build_model
from .scan import DEFAULT_CHUNK

GRAPHS = ("style_encoder", "stylizer")


def _tensors(graph, prefix, out):
    for init in graph.initializer:
        out[f"{prefix}:{init.name}"] = numpy_helper.to_array(init)
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and node.op_type == "Constant":
                out[f"{prefix}:const:{node.output[0]}"] = numpy_helper.to_array(attr.t)
            elif attr.type == onnx.AttributeProto.GRAPH:
                _tensors(attr.g, f"{prefix}/{node.name}.{attr.name}", out)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for i, g in enumerate(attr.graphs):
                    _tensors(g, f"{prefix}/{node.name}.{attr.name}{i}", out)
    return out


def tensors_of(protos: dict) -> dict[str, np.ndarray]:
    out = {}
    for name, proto in protos.items():
        _tensors(proto.graph, name, out)
    return out


def _export(model, scan, chunk):
    from .export import export_graphs
    enc, sty = export_graphs(model, scan, chunk)
    return tensors_of({"style_encoder": enc, "stylizer": sty})


def read_folder(folder) -> tuple[dict, dict[str, str]]:
    folder = Path(folder)
    protos, props = {}, {}
    for g in GRAPHS:
        path = folder / f"{g}.onnx"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: an exported model folder has {' and '.join(GRAPHS)}.onnx")
        protos[g] = onnx.load(str(path))
        props.update({p.key: p.value for p in protos[g].metadata_props})
    for key in ("mambast.config", "mambast.scan_variant"):
        if key not in props:
            raise ValueError(f"{folder} has no {key} metadata: not a mambast.export folder")
    return protos, props


def import_folder(folder, chunk: int = DEFAULT_CHUNK):
    """-> (state_dict, props, unused parameter names). Raises if the round trip is not exact."""
    protos, props = read_folder(folder)
    cfg, scan = get_config(props["mambast.config"]), props["mambast.scan_variant"]
    if scan == "fused":
        raise ValueError("import from a `sequential` or `parallel` export (the fused one has the same weights)")
    target = tensors_of(protos)
    model = build_model(cfg, seed=0, scan_variant="sequential")
    base = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(12345)
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.copy_(torch.randn(p.shape, generator=g))
    markers = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    exported = _export(model, scan, chunk)
    by_size: dict[int, list[str]] = {}
    for k, v in markers.items():
        by_size.setdefault(v.numel(), []).append(k)
    recovered: dict[str, torch.Tensor] = {}
    for key, arr in exported.items():
        for name in by_size.get(arr.size, []):
            p = markers[name].numpy()
            if np.array_equal(arr.reshape(-1), p.reshape(-1)):
                how = "same"
            elif p.ndim == 2 and np.array_equal(arr.reshape(-1), p.T.reshape(-1)):
                how = "transposed"
            else:
                continue
            if key not in target:
                raise ValueError(f"{folder}: initializer {key} is missing; was it exported by another version?")
            src = target[key]
            val = src.reshape(p.shape) if how == "same" else src.reshape(p.T.shape).T
            val = torch.from_numpy(np.array(val, copy=True)).to(markers[name].dtype)
            if name in recovered and not torch.equal(recovered[name], val):
                raise ValueError(f"{folder}: {name} is stored twice with different values")
            recovered[name] = val
            break
    sd = dict(base)
    sd.update(recovered)
    unused = sorted(k for k in markers if k not in recovered)
    model.load_state_dict(sd, strict=True)
    again = _export(model, scan, chunk)
    diff = [k for k in target if k not in again or not np.array_equal(again[k], target[k])]
    if diff or set(again) != set(target):
        raise ValueError(f"{folder}: recovered weights do not reproduce the graphs exactly "
                         f"({len(diff)} tensors differ, e.g. {diff[:3]})")
    return sd, props, unused


def import_as_checkpoint(folder) -> dict:
    """A weights blob (devicekit / train --init / export / evaluate format) from an export folder;
    the iteration count comes from the provenance the exporter stored ("trained: N iterations")."""
    sd, props, _ = import_folder(folder)
    provenance = props.get("mambast.provenance", "trained")
    m = re.search(r"trained: (\d+) iterations", provenance)
    return {"config": props["mambast.config"], "provenance": provenance, "state_dict": sd,
            "iteration": int(m.group(1)) if m else 0}
