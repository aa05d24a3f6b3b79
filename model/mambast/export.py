"""Export Mamba-ST to two ONNX graphs: style_encoder.onnx and stylizer.onnx (+ model-card.md).

A sequential or parallel export also writes style_encoder.fused.onnx and stylizer.fused.onnx: the same graphs
with the custom op mambast::SelectiveScan (native/ libmambast_ops.so), which the engine runs when the library
loads. They hold no copy of the weights: their large initializers are ONNX external data pointing at the byte
ranges of the identical tensors inside the portable file, whose SHA-256 they record (mambast.weights_sha256).

    cd model && python -m mambast.export --out DIR --random-init --config tiny --seed 7 --scan parallel
    cd model && python -m mambast.export --out DIR --official EMB.pth MAMBA.pth DEC.pth --scan sequential
    cd model && python -m mambast.export --out DIR --checkpoint trained.pt --scan parallel
    cd model && python -m mambast.export --add-fused ../models/default
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path

import onnx
import torch
import torch.nn as nn

from . import onnx_graph
from .checkpoint import load_official, load_trained, official_iteration
from .config import PATCH_SIZE, get_config
from .model import MambaST, build_model
from .scan import DEFAULT_CHUNK

FORMAT_VERSION = "1"
DEFAULT_LICENSE = "MIT"
OFFICIAL_LICENSE = "weights by Botti et al. (FilippoBotti/MambaST); use under the authors' terms"


class _Piece(nn.Module):
    def __init__(self, model: MambaST, fn: str):
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, *args):
        return getattr(self.model, self.fn)(*args)


def _export_piece(model, fn, args, input_names, output_names, dynamic_axes) -> onnx.ModelProto:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Piece(model, fn), args, buf, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=onnx_graph.OPSET, do_constant_folding=True,
                          custom_opsets={onnx_graph.SCAN_DOMAIN: 1})
    return onnx.load_from_string(buf.getvalue())


def metadata(model: MambaST, graph: str, scan: str, provenance: str, model_name: str,
             model_version: str, license_: str) -> dict[str, str]:
    return {
        "mambast.format": FORMAT_VERSION,
        "mambast.graph": graph,
        "mambast.model_name": model_name,
        "mambast.model_version": model_version,
        "mambast.config": model.cfg.name,
        "mambast.d_model": str(model.cfg.d_model),
        "mambast.scan_variant": scan,
        "mambast.patch_size": str(PATCH_SIZE),
        "mambast.input_range": "0,1",
        "mambast.provenance": provenance,
        "mambast.license": license_,
    }


def export_graphs(model: MambaST, scan: str, chunk: int = DEFAULT_CHUNK):
    """-> (style_encoder ModelProto, stylizer ModelProto), not yet carrying metadata."""
    cfg = model.cfg
    prev = (model.scan.variant, model.scan.chunk)
    model.scan.variant, model.scan.chunk = "export", chunk
    try:
        with torch.no_grad():
            g = torch.Generator().manual_seed(0)
            # sizes deliberately distinct so that no dimension is traced as equal to another
            style = torch.rand(1, 3, 40, 56, generator=g)
            content = torch.rand(1, 3, 24, 48, generator=g)
            ls, h8, w8 = 5 * 7, 3, 6
            tokens = torch.rand(1, ls, cfg.d_model, generator=g)
            index = torch.randint(0, ls, (1, h8 * w8), generator=g)
            emb = torch.rand(1, h8, w8, cfg.d_model, generator=g)
            grid_axes = {0: "batch", 1: "grid_h", 2: "grid_w"}

            enc = _export_piece(model, "encode_style", (style,), ["style"], ["style_tokens"],
                                {"style": {0: "batch", 2: "style_height", 3: "style_width"},
                                 "style_tokens": {0: "batch", 1: "style_tokens"}})
            main = _export_piece(model, "stylize_main", (content, tokens, index),
                                 ["content", "style_tokens", "style_index"], ["emb", "x_c", "f_cs"],
                                 {"content": {0: "batch", 2: "height", 3: "width"},
                                  "style_tokens": {0: "batch", 1: "style_tokens"},
                                  "style_index": {0: "batch", 1: "tokens"},
                                  "emb": grid_axes, "x_c": grid_axes, "f_cs": grid_axes})
            cc = _export_piece(model, "content_identity", (emb, emb), ["emb", "x_c"], ["f_cc"],
                               {"emb": grid_axes, "x_c": grid_axes, "f_cc": grid_axes})
            head = _export_piece(model, "render", (emb,), ["f"], ["stylized"],
                                 {"f": grid_axes, "stylized": {0: "batch", 2: "height", 3: "width"}})
    finally:
        model.scan.variant, model.scan.chunk = prev

    stylizer = onnx_graph.compose_stylizer(main, cc, head)
    d = cfg.d_model
    onnx_graph.set_io_shapes(enc, {"style": ["batch", 3, "style_height", "style_width"],
                                   "style_tokens": ["batch", "style_tokens", d]})
    onnx_graph.set_io_shapes(stylizer, {"content": ["batch", 3, "height", "width"],
                                        "style_tokens": ["batch", "style_tokens", d],
                                        "style_index": ["batch", "tokens"], "strength": ["batch"],
                                        "stylized": ["batch", 3, "height", "width"]})
    for m in (enc, stylizer):
        onnx_graph.expand_scans(m, scan, chunk)
        onnx_graph.drop_unused_initializers(m)
        onnx_graph.dedupe_constants(m.graph)
        onnx_graph.compact_names(m)
    return enc, stylizer


FUSED_SUFFIX = ".fused.onnx"
EXTERNAL_MIN_BYTES = 1024  # smaller tensors stay inline: not worth an external reference


def share_weights(proto: onnx.ModelProto, weights_path: Path) -> int:
    """Points every initializer of `proto` (>= EXTERNAL_MIN_BYTES of raw data) whose bytes occur in
    `weights_path` at that byte range (external data); returns the bytes left inline."""
    data = weights_path.read_bytes()
    inline = 0
    for init in proto.graph.initializer:
        raw = init.raw_data
        at = data.find(raw) if len(raw) >= EXTERNAL_MIN_BYTES else -1
        if at < 0:
            inline += len(raw)
            continue
        init.ClearField("raw_data")
        init.data_location = onnx.TensorProto.EXTERNAL
        del init.external_data[:]
        for key, value in (("location", weights_path.name), ("offset", str(at)), ("length", str(len(raw)))):
            entry = init.external_data.add()
            entry.key, entry.value = key, value
    return inline


def write_fused_siblings(model: MambaST, out: Path, props_of: dict[str, dict[str, str]],
                         chunk: int = DEFAULT_CHUNK) -> dict[str, Path]:
    """Writes <graph>.fused.onnx next to each portable <graph>.onnx already in `out`, sharing its weights."""
    enc, sty = export_graphs(model, "fused", chunk)
    paths = {}
    for graph, proto in (("style_encoder", enc), ("stylizer", sty)):
        portable = out / f"{graph}.onnx"
        props = dict(props_of[graph])
        props["mambast.scan_variant"] = "fused"
        props["mambast.weights_file"] = portable.name
        props["mambast.weights_sha256"] = hashlib.sha256(portable.read_bytes()).hexdigest()
        onnx_graph.set_metadata(proto, props, doc=f"Mamba-ST {graph} ({model.cfg.name}, scan fused, weights in {portable.name})")
        onnx.checker.check_model(proto)
        share_weights(proto, portable)
        path = out / f"{graph}{FUSED_SUFFIX}"
        # serialized directly: onnx.save would try to write external data of its own
        path.write_bytes(proto.SerializeToString())
        paths[f"{graph}.fused"] = path
    return paths


def write_model_card(out: Path, props: dict[str, str], model: MambaST, sizes: dict[str, int], chunk: int):
    template = (Path(__file__).parent / "templates" / "model-card.md").read_text()
    cfg = model.cfg
    n_params = sum(p.numel() for p in model.parameters())
    text = template.format(
        **{k.replace("mambast.", ""): v for k, v in props.items()},
        d_inner=cfg.d_inner, d_state=cfg.d_state, dt_rank=cfg.rank, depth_content=cfg.depth_content,
        depth_style=cfg.depth_style, depth_decoder=cfg.depth_decoder, cnn_widths=", ".join(map(str, cfg.cnn_widths)),
        n_params=f"{n_params:,}", chunk=chunk,
        style_encoder_bytes=f"{sizes['style_encoder.onnx']:,}", stylizer_bytes=f"{sizes['stylizer.onnx']:,}",
        exported_at=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    )
    (out / "model-card.md").write_text(text)


def export(model: MambaST, out_dir, scan: str, provenance: str, model_name: str | None = None,
           model_version: str = "1", license_: str = DEFAULT_LICENSE, chunk: int = DEFAULT_CHUNK,
           card: bool = True, fused_siblings: bool = True) -> dict[str, Path]:
    """Writes the two graphs (and, unless `scan` is fused or fused_siblings is False, their fused siblings)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_name = model_name or f"mambast-{model.cfg.name}"
    enc, sty = export_graphs(model, scan, chunk)
    paths, sizes, props_of = {}, {}, {}
    for graph, proto in (("style_encoder", enc), ("stylizer", sty)):
        props = metadata(model, graph, scan, provenance, model_name, model_version, license_)
        props_of[graph] = props
        onnx_graph.set_metadata(proto, props, doc=f"Mamba-ST {graph} ({model.cfg.name}, scan {scan})")
        onnx.checker.check_model(proto)
        path = out / f"{graph}.onnx"
        onnx.save(proto, str(path))
        paths[graph], sizes[path.name] = path, os.path.getsize(path)
    if scan != "fused" and fused_siblings:
        paths.update(write_fused_siblings(model, out, props_of, chunk))
    else:
        for graph in ("style_encoder", "stylizer"):
            (out / f"{graph}{FUSED_SUFFIX}").unlink(missing_ok=True)
    if card:
        write_model_card(out, props, model, sizes, chunk)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mambast.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="output folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--add-fused", metavar="FOLDER",
                     help="only add fused siblings to an existing export folder (weights read back from its graphs)")
    src.add_argument("--official", nargs=3, metavar=("EMB", "MAMBA", "DEC"),
                     help="the authors' embedding_iter_N.pth mamba_iter_N.pth decoder_iter_N.pth")
    src.add_argument("--random-init", action="store_true", help="random weights (for tests and sizing)")
    src.add_argument("--checkpoint", help="this project's trained checkpoint (mambast.checkpoint.save_trained)")
    p.add_argument("--config", default=None, help="base | small | tiny (random-init, or a bare checkpoint)")
    p.add_argument("--seed", type=int, default=0, help="random-init seed")
    p.add_argument("--scan", choices=("sequential", "parallel", "fused"), default="parallel")
    p.add_argument("--no-fused", action="store_true",
                   help="sequential/parallel: do not write the fused siblings (*.fused.onnx)")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="chunk length of the parallel scan (power of 2)")
    p.add_argument("--model-name", default=None)
    p.add_argument("--model-version", default="1")
    p.add_argument("--license", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    if a.add_fused:
        for path in add_fused(a.add_fused, a.chunk).values():
            print(f"{path}  {os.path.getsize(path):,} bytes")
        return
    if not a.out:
        p.error("--out is required")
    if a.official:
        model = load_official(*a.official)
        provenance = f"official checkpoint iter {official_iteration(a.official[1])}"
        license_ = a.license or OFFICIAL_LICENSE
    elif a.checkpoint:
        model, prov = load_trained(a.checkpoint, a.config)
        provenance = prov if prov.startswith("trained") else f"trained: {prov}"
        license_ = a.license or DEFAULT_LICENSE
    else:
        model = build_model(get_config(a.config or "small"), seed=a.seed)
        provenance = f"random-init seed {a.seed}"
        license_ = a.license or DEFAULT_LICENSE
    paths = export(model, a.out, a.scan, provenance, a.model_name, a.model_version, license_, a.chunk,
                   fused_siblings=not a.no_fused)
    for path in paths.values():
        print(f"{path}  {os.path.getsize(path):,} bytes")


def add_fused(folder, chunk: int = DEFAULT_CHUNK) -> dict[str, Path]:
    """Adds fused siblings to an existing sequential/parallel export (e.g. models/default) without touching its
    files: the weights are read back from the graphs (mambast.onnx_import, exact round trip)."""
    from .onnx_import import import_folder, read_folder
    folder = Path(folder)
    protos, _ = read_folder(folder)
    state, props, _ = import_folder(folder, chunk)
    model = build_model(get_config(props["mambast.config"]), seed=0, scan_variant="sequential")
    model.load_state_dict(state, strict=True)
    props_of = {g: {p.key: p.value for p in protos[g].metadata_props} for g in protos}
    return write_fused_siblings(model, folder, props_of, chunk)


if __name__ == "__main__":
    main()
