"""Fused mambast::SelectiveScan (native/ libmambast_ops.so) through ONNX Runtime: one-node graphs
against a float64 per-token loop, shape errors, the `fused` export, tiny golden parity.

Builds native/ with CMake into model/.build/native against the restored Microsoft.ML.OnnxRuntime NuGet
package (skips when cmake, a C++ compiler or the package is missing)."""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import GOLDEN, MODEL_DIR

REPO = MODEL_DIR.parent
BUILD = MODEL_DIR / ".build" / "native"


@pytest.fixture(scope="session")
def native():
    """(runner path, library path), building native/ once per session."""
    if not shutil.which("cmake") or not (shutil.which("g++") or shutil.which("c++")):
        pytest.skip("cmake or a C++ compiler is missing")
    from mambast.ort import package_dir
    pkg = package_dir()
    if pkg is None:
        pytest.skip("the Microsoft.ML.OnnxRuntime NuGet package is not restored (scripts/ort-package.sh)")
    cfg = subprocess.run(["cmake", "-S", str(REPO / "native"), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release",
                          f"-DMAMBAST_ORT_PACKAGE={pkg}", "-DMAMBAST_OPS_CUDA=OFF"], capture_output=True, text=True)
    assert cfg.returncode == 0, cfg.stdout + cfg.stderr
    build = subprocess.run(["cmake", "--build", str(BUILD), "-j2", "--target", "mambast_ops", "mambast_ort_run"],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    return BUILD / "mambast_ort_run", BUILD / "libmambast_ops.so"


def run(native, model_path, feeds, threads=1):
    exe, lib = native
    with tempfile.TemporaryDirectory() as tmp:
        args = [str(exe), str(model_path), tmp, "--ops", str(lib), "--threads", str(threads)]
        for name, arr in feeds.items():
            p = os.path.join(tmp, f"in_{name}.npy")
            np.save(p, np.ascontiguousarray(arr))
            args.append(f"{name}={p}")
        res = subprocess.run(args, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(res.stderr.strip())
        return {f[:-4]: np.load(os.path.join(tmp, f)) for f in os.listdir(tmp)
                if f.endswith(".npy") and not f.startswith("in_")}


NAMES = ("u", "delta", "A", "B", "C", "D", "delta_bias")


def one_node_model(path, k, din, n, softplus=1):
    kd = k * din
    shapes = {"u": ["b", kd, "L"], "delta": ["b", kd, "L"], "A": [kd, n], "B": ["b", k, n, "L"],
              "C": ["b", k, n, "L"], "D": [kd], "delta_bias": [kd]}
    node = helper.make_node("SelectiveScan", list(NAMES), ["y"], domain="mambast", k=k, d_inner=din,
                            d_state=n, delta_softplus=softplus)
    graph = helper.make_graph([node], "scan", [helper.make_tensor_value_info(x, TensorProto.FLOAT, shapes[x]) for x in NAMES],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", kd, "L"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("mambast", 1)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def make_inputs(rng, batch, k, din, n, length, delta_scale):
    kd = k * din
    return {
        "u": rng.standard_normal((batch, kd, length)).astype(np.float32),
        "delta": (rng.standard_normal((batch, kd, length)) * delta_scale).astype(np.float32),
        "A": -np.exp(rng.standard_normal((kd, n))).astype(np.float32),
        "B": rng.standard_normal((batch, k, n, length)).astype(np.float32),
        "C": rng.standard_normal((batch, k, n, length)).astype(np.float32),
        "D": rng.standard_normal(kd).astype(np.float32),
        "delta_bias": (rng.random(kd) - 0.5).astype(np.float32),
    }


def reference(f, k, softplus=True):
    """float64 per-token loop, vectorised over batch and channels."""
    u, delta = f["u"].astype(np.float64), f["delta"].astype(np.float64)
    A, D = f["A"].astype(np.float64), f["D"].astype(np.float64)
    batch, kd, length = u.shape
    din = kd // k
    Bm = np.repeat(f["B"].astype(np.float64), din, axis=1)      # [b, kd, n, L]
    Cm = np.repeat(f["C"].astype(np.float64), din, axis=1)
    dt = delta + f["delta_bias"].astype(np.float64)[:, None]
    if softplus:
        dt = np.where(dt > 20, dt, np.log1p(np.exp(np.minimum(dt, 20))))
    h = np.zeros((batch, kd, A.shape[1]))
    y = np.empty_like(u)
    for t in range(length):
        h = np.exp(dt[:, :, t, None] * A) * h + (dt[:, :, t] * u[:, :, t])[..., None] * Bm[..., t]
        y[:, :, t] = (h * Cm[..., t]).sum(-1)
    return y + D[:, None] * u


CASES = [  # batch, k, d_inner, d_state, L, delta scale
    (1, 4, 16, 16, 64, 1.0),        # widths that fill whole vectors
    (2, 2, 13, 16, 131, 1.0),       # odd L, Din not a multiple of the vector width, batch 2
    (1, 4, 20, 16, 1027, 1.0),      # several chunks of 64 tokens, odd L
    (2, 1, 40, 16, 257, 30.0),      # large deltas (softplus up to ~100)
    (1, 2, 9, 5, 99, 3.0),          # N other than 16
]


@pytest.mark.parametrize("batch,k,din,n,length,scale", CASES)
def test_fused_matches_reference_loop(native, tmp_path, batch, k, din, n, length, scale):
    rng = np.random.default_rng(length)
    f = make_inputs(rng, batch, k, din, n, length, scale)
    model = one_node_model(tmp_path / "scan.onnx", k, din, n)
    ref = reference(f, k)
    for threads in (1, 2):
        y = run(native, model, f, threads)["y"]
        assert y.shape == ref.shape
        assert np.abs(y - ref).max() / np.abs(ref).max() < 1e-5, threads


def test_fused_without_softplus(native, tmp_path):
    rng = np.random.default_rng(3)
    f = make_inputs(rng, 1, 2, 11, 16, 70, 1.0)
    f["delta"] = np.abs(f["delta"]) + 0.5
    model = one_node_model(tmp_path / "scan.onnx", 2, 11, 16, softplus=0)
    ref = reference(f, 2, softplus=False)
    y = run(native, model, f)["y"]
    assert np.abs(y - ref).max() / np.abs(ref).max() < 1e-5


def test_fused_rejects_mismatched_shapes(native, tmp_path):
    rng = np.random.default_rng(4)
    f = make_inputs(rng, 1, 2, 8, 16, 10, 1.0)
    f["B"] = f["B"][..., :9]
    model = one_node_model(tmp_path / "scan.onnx", 2, 8, 16)
    with pytest.raises(RuntimeError, match=r"SelectiveScan: B must be \[1, 2, 16, 10\], got \[1, 2, 16, 9\]"):
        run(native, model, f)


def test_fused_rejects_unsupported_state_size(native, tmp_path):
    rng = np.random.default_rng(5)
    f = make_inputs(rng, 1, 1, 4, 65, 3, 1.0)
    model = one_node_model(tmp_path / "scan.onnx", 1, 4, 65)
    with pytest.raises(RuntimeError, match=r"0 < d_state <= 64"):
        run(native, model, f)


@pytest.fixture(scope="module")
def tiny_fused(tmp_path_factory):
    from mambast import build_model, get_config
    from mambast.export import export
    model = build_model(get_config("tiny"), seed=7, scan_variant="sequential")
    folder = tmp_path_factory.mktemp("tiny-fused")
    export(model, folder, "fused", "random-init seed 7", card=False)
    return folder


def test_fused_export_keeps_custom_node(tiny_fused):
    from mambast.onnx_graph import count_ops
    for name in ("style_encoder.onnx", "stylizer.onnx"):
        m = onnx.load(str(tiny_fused / name))
        ops = count_ops(m)
        assert ops.get("SelectiveScan", 0) > 0 and "Loop" not in ops
        assert {(o.domain, o.version) for o in m.opset_import} == {("", 17), ("mambast", 1)}
        props = {p.key: p.value for p in m.metadata_props}
        assert props["mambast.scan_variant"] == "fused"
        scans = [n for n in m.graph.node if n.op_type == "SelectiveScan"]
        assert scans and all(n.domain == "mambast" and len(n.input) == 7 for n in scans)


def test_fused_tiny_matches_golden(native, tiny_fused):
    path = GOLDEN / "manifest.json"
    if not path.exists():
        pytest.skip("golden files not generated")
    manifest = json.loads(path.read_text())
    tol = manifest["tolerance"]
    for case in manifest["cases"]:
        f = {k: np.load(GOLDEN / case["folder"] / m["file"]) for k, m in case["files"].items()}
        tokens = run(native, tiny_fused / "style_encoder.onnx", {"style": f["style"]})["style_tokens"]
        assert np.abs(tokens - f["style_tokens"]).max() < tol["style_tokens_abs"], case["name"]
        feeds = {k: f[k] for k in ("content", "style_tokens", "style_index", "strength")}
        out = run(native, tiny_fused / "stylizer.onnx", feeds, threads=2)["stylized"]
        assert np.abs(out - f["stylized"]).max() < tol["stylized_abs"], case["name"]


@pytest.fixture(scope="module")
def tiny_sequential_with_siblings(tmp_path_factory):
    from mambast import build_model, get_config
    from mambast.export import export
    model = build_model(get_config("tiny"), seed=7, scan_variant="sequential")
    folder = tmp_path_factory.mktemp("tiny-sequential-siblings")
    export(model, folder, "sequential", "random-init seed 7", card=False)
    return folder


def test_sequential_export_writes_fused_siblings_that_share_its_weights(tiny_sequential_with_siblings):
    import hashlib
    folder = tiny_sequential_with_siblings
    for g in ("style_encoder", "stylizer"):
        portable, sibling = folder / f"{g}.onnx", folder / f"{g}.fused.onnx"
        m = onnx.load(str(sibling), load_external_data=False)
        props = {p.key: p.value for p in m.metadata_props}
        assert props["mambast.scan_variant"] == "fused" and props["mambast.weights_file"] == portable.name
        assert props["mambast.weights_sha256"] == hashlib.sha256(portable.read_bytes()).hexdigest()
        external = [i for i in m.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
        assert external, "no initializer points into the portable graph"
        data = portable.read_bytes()
        for init in external:
            ext = {e.key: e.value for e in init.external_data}
            assert ext["location"] == portable.name
            assert int(ext["offset"]) + int(ext["length"]) <= len(data)
        # no second copy of the weights: the sibling is a small fraction of the portable graph
        assert sibling.stat().st_size < 0.5 * portable.stat().st_size


def test_fused_siblings_match_golden(native, tiny_sequential_with_siblings):
    path = GOLDEN / "manifest.json"
    if not path.exists():
        pytest.skip("golden files not generated")
    manifest = json.loads(path.read_text())
    tol = manifest["tolerance"]
    folder = tiny_sequential_with_siblings
    for case in manifest["cases"]:
        f = {k: np.load(GOLDEN / case["folder"] / m["file"]) for k, m in case["files"].items()}
        tokens = run(native, folder / "style_encoder.fused.onnx", {"style": f["style"]})["style_tokens"]
        assert np.abs(tokens - f["style_tokens"]).max() < tol["style_tokens_abs"], case["name"]
        feeds = {k: f[k] for k in ("content", "style_tokens", "style_index", "strength")}
        out = run(native, folder / "stylizer.fused.onnx", feeds, threads=2)["stylized"]
        assert np.abs(out - f["stylized"]).max() < tol["stylized_abs"], case["name"]
