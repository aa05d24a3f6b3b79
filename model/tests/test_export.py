"""Exported graphs: checker, interface, metadata, the strength If, and ONNX Runtime parity."""
import numpy as np
import onnx
import pytest
import torch

from mambast import onnx_graph, style_index

META_KEYS = {"mambast.format", "mambast.graph", "mambast.model_name", "mambast.model_version", "mambast.config",
             "mambast.d_model", "mambast.scan_variant", "mambast.patch_size", "mambast.input_range",
             "mambast.provenance", "mambast.license"}
ELEM = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64"}


def signature(values):
    out = {}
    for v in values:
        t = v.type.tensor_type
        out[v.name] = (ELEM[t.elem_type], [d.dim_param or d.dim_value for d in t.shape.dim])
    return out


@pytest.mark.parametrize("variant", ["sequential", "parallel"])
def test_graphs_check_and_carry_metadata(tiny_exports, variant):
    model, folders = tiny_exports
    folder = folders[variant]
    assert (folder / "model-card.md").exists()
    for graph in ("style_encoder", "stylizer"):
        m = onnx.load(str(folder / f"{graph}.onnx"))
        onnx.checker.check_model(m)
        assert [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")] == [17]
        assert all(o.domain in ("", "ai.onnx") for o in m.opset_import)
        meta = {p.key: p.value for p in m.metadata_props}
        assert set(meta) == META_KEYS
        assert meta["mambast.format"] == "1" and meta["mambast.graph"] == graph
        assert meta["mambast.config"] == "tiny" and meta["mambast.d_model"] == "32"
        assert meta["mambast.scan_variant"] == variant and meta["mambast.patch_size"] == "8"
        assert meta["mambast.input_range"] == "0,1" and meta["mambast.provenance"] == "random-init seed 7"
        assert (folder / f"{graph}.onnx").stat().st_size < 300_000
        for init in m.graph.initializer:
            assert init.data_type == onnx.TensorProto.FLOAT or init.data_type == onnx.TensorProto.INT64


def test_interfaces(tiny_exports):
    _, folders = tiny_exports
    enc = onnx.load(str(folders["parallel"] / "style_encoder.onnx"))
    sty = onnx.load(str(folders["parallel"] / "stylizer.onnx"))
    assert signature(enc.graph.input) == {"style": ("float32", ["batch", 3, "style_height", "style_width"])}
    assert signature(enc.graph.output) == {"style_tokens": ("float32", ["batch", "style_tokens", 32])}
    assert signature(sty.graph.input) == {
        "content": ("float32", ["batch", 3, "height", "width"]),
        "style_tokens": ("float32", ["batch", "style_tokens", 32]),
        "style_index": ("int64", ["batch", "tokens"]),
        "strength": ("float32", ["batch"]),
    }
    assert signature(sty.graph.output) == {"stylized": ("float32", ["batch", 3, "height", "width"])}


def test_stylizer_structure(tiny_exports):
    model, folders = tiny_exports
    for variant, folder in folders.items():
        sty = onnx.load(str(folder / "stylizer.onnx"))
        ifs = [n for n in sty.graph.node if n.op_type == "If"]
        assert len(ifs) == 1
        # the then-branch holds the style encoder on the content and a second ST-decoder pass
        then = next(a.g for a in ifs[0].attribute if a.name == "then_branch")
        then_loops = sum(1 for n in then.node if n.op_type == "Loop")
        cfg = model.cfg
        assert then_loops == cfg.depth_style + cfg.depth_decoder
        assert onnx_graph.count_ops(sty)["Loop"] == cfg.depth_content + 2 * cfg.depth_decoder + cfg.depth_style
        # each initializer stored once
        blobs = [i.raw_data for i in sty.graph.initializer if len(i.raw_data) > 64]
        assert len(blobs) == len(set(blobs))


def _run_both(ort, folder, c, s, idx_seeds, strength):
    tokens = ort.run(folder / "style_encoder.onnx", {"style": s})["style_tokens"]
    l = (c.shape[2] // 8) * (c.shape[3] // 8)
    idx = np.stack([style_index(sd, tokens.shape[1], l) for sd in idx_seeds])
    out = ort.run(folder / "stylizer.onnx", {"content": c, "style_tokens": tokens, "style_index": idx,
                                             "strength": strength})["stylized"]
    return tokens, idx, out


@pytest.mark.parametrize("variant", ["sequential", "parallel"])
def test_onnx_runtime_matches_pytorch(tiny_exports, ort_available, variant):
    model, folders = tiny_exports
    g = np.random.RandomState(0)
    c = g.rand(2, 3, 40, 72).astype(np.float32)           # not the traced size, not square
    s = g.rand(2, 3, 56, 24).astype(np.float32)
    strength = np.array([0.0, 0.6], np.float32)
    tokens, idx, out = _run_both(ort_available, folders[variant], c, s, [5, 6], strength)
    with torch.no_grad():
        t_ref = model.encode_style(torch.from_numpy(s))
        y_ref = model.stylize(torch.from_numpy(c), t_ref, torch.from_numpy(idx), torch.from_numpy(strength))
    assert np.abs(tokens - t_ref.numpy()).max() < 1e-4
    assert out.shape == (2, 3, 40, 72)
    assert np.abs(out - y_ref.numpy()).max() < 1e-4
    # strength 1 everywhere: the If takes the cheap branch
    _, _, out1 = _run_both(ort_available, folders[variant], c[:1], s[:1], [5], np.ones(1, np.float32))
    with torch.no_grad():
        y1 = model.stylize(torch.from_numpy(c[:1]), t_ref[:1], torch.from_numpy(idx[:1]), torch.ones(1))
    assert np.abs(out1 - y1.numpy()).max() < 1e-4


def test_small_config_fits_24_mb(tmp_path):
    """Both ONNX files of `small` <= 24 MB fp32, with trained-like (all distinct) weights."""
    from mambast import build_model, get_config
    from mambast.export import export
    model = build_model(get_config("small"), seed=1)
    with torch.no_grad():  # random init repeats A_logs/Ds in every block, which dedupes; defeat that
        for name, p in model.named_parameters():
            if name.endswith(("A_logs", "Ds")):
                p.add_(torch.rand_like(p) * 1e-3)
    paths = export(model, tmp_path, "parallel", "random-init seed 1", card=False)
    total = sum(p.stat().st_size for p in paths.values())
    assert total <= 24_000_000, total


def test_cli_exports_own_checkpoint(tmp_path):
    from mambast import build_model, get_config
    from mambast.checkpoint import save_trained
    from mambast.export import main
    ckpt = tmp_path / "trained.pt"
    save_trained(build_model(get_config("tiny"), seed=2), ckpt, provenance="trained: unit test")
    main(["--out", str(tmp_path / "out"), "--checkpoint", str(ckpt), "--scan", "sequential",
          "--model-name", "unit", "--model-version", "3"])
    m = onnx.load(str(tmp_path / "out" / "stylizer.onnx"))
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["mambast.provenance"] == "trained: unit test" and meta["mambast.config"] == "tiny"
    assert meta["mambast.model_name"] == "unit" and meta["mambast.model_version"] == "3"
    assert "trained: unit test" in (tmp_path / "out" / "model-card.md").read_text()
