"""Export Mamba-ST to two ONNX graphs: style_encoder.onnx and stylizer.onnx (+ model-card.md).

    cd model && python -m mambast.export --out DIR --random-init --config tiny --seed 7 --scan parallel
    cd model && python -m mambast.export --out DIR --official EMB.pth MAMBA.pth DEC.pth --scan sequential
    cd model && python -m mambast.export --out DIR --checkpoint trained.pt --scan parallel
"""
from __future__ import annotations

import argparse
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
           card: bool = True) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_name = model_name or f"mambast-{model.cfg.name}"
    enc, sty = export_graphs(model, scan, chunk)
    paths, sizes = {}, {}
    for graph, proto in (("style_encoder", enc), ("stylizer", sty)):
        props = metadata(model, graph, scan, provenance, model_name, model_version, license_)
        onnx_graph.set_metadata(proto, props, doc=f"Mamba-ST {graph} ({model.cfg.name}, scan {scan})")
        onnx.checker.check_model(proto)
        path = out / f"{graph}.onnx"
        onnx.save(proto, str(path))
        paths[graph], sizes[path.name] = path, os.path.getsize(path)
    if card:
        write_model_card(out, props, model, sizes, chunk)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mambast.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--official", nargs=3, metavar=("EMB", "MAMBA", "DEC"),
                     help="the authors' embedding_iter_N.pth mamba_iter_N.pth decoder_iter_N.pth")
    src.add_argument("--random-init", action="store_true", help="random weights (for tests and sizing)")
    src.add_argument("--checkpoint", help="this project's trained checkpoint (mambast.checkpoint.save_trained)")
    p.add_argument("--config", default=None, help="base | small | tiny (random-init, or a bare checkpoint)")
    p.add_argument("--seed", type=int, default=0, help="random-init seed")
    p.add_argument("--scan", choices=("sequential", "parallel", "fused"), default="parallel")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="chunk length of the parallel scan (power of 2)")
    p.add_argument("--model-name", default=None)
    p.add_argument("--model-version", default="1")
    p.add_argument("--license", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

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
    paths = export(model, a.out, a.scan, provenance, a.model_name, a.model_version, license_, a.chunk)
    for path in paths.values():
        print(f"{path}  {os.path.getsize(path):,} bytes")


if __name__ == "__main__":
    main()
