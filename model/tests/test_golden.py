"""Golden files: reproducible generation, size budget, ONNX Runtime agreement."""
import json

import numpy as np
import pytest

from conftest import GOLDEN
from mambast.golden import generate
from mambast.style_index import style_index


@pytest.fixture(scope="module")
def manifest():
    path = GOLDEN / "manifest.json"
    if not path.exists():
        pytest.skip("golden files not generated")
    return json.loads(path.read_text())


def test_golden_size_budget(manifest):
    total = sum(f.stat().st_size for f in GOLDEN.rglob("*") if f.is_file())
    assert total < 1.5e6


def test_golden_regeneration_is_reproducible(manifest, tmp_path):
    """Inputs and integer tensors byte for byte; float outputs to fp32 rounding, because the BLAS
    under PyTorch (reference BLAS, OpenBLAS with its per-CPU kernels) changes the last bits."""
    fresh = generate(tmp_path)
    assert fresh == manifest
    for f in GOLDEN.rglob("*"):
        if not f.is_file():
            continue
        other = tmp_path / f.relative_to(GOLDEN)
        if f.suffix != ".npy":
            assert other.read_bytes() == f.read_bytes(), f
            continue
        want, got = np.load(f), np.load(other)
        assert got.dtype == want.dtype and got.shape == want.shape, f
        if want.dtype.kind != "f":
            np.testing.assert_array_equal(got, want, err_msg=str(f))
        else:
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * scale, err_msg=str(f))


def test_golden_npy_format(manifest):
    for case in manifest["cases"]:
        for name, meta in case["files"].items():
            raw = (GOLDEN / case["folder"] / meta["file"]).read_bytes()
            assert raw[:8] == b"\x93NUMPY\x01\x00", name
            arr = np.load(GOLDEN / case["folder"] / meta["file"])
            assert arr.dtype.str in ("<f4", "<i8") and list(arr.shape) == meta["shape"]
            assert arr.flags.c_contiguous


def test_golden_style_index_cases(manifest):
    for c in manifest["style_index_cases"]:
        assert np.array_equal(np.load(GOLDEN / c["file"]), style_index(c["seed"], c["ls"], c["l"]))


def test_golden_onnx_runtime_agrees(manifest, ort_available):
    tol = manifest["tolerance"]
    for g in manifest["graphs"].values():
        folder = GOLDEN / g["folder"]
        for case in manifest["cases"]:
            f = {k: np.load(GOLDEN / case["folder"] / m["file"]) for k, m in case["files"].items()}
            tokens = ort_available.run(folder / g["style_encoder"], {"style": f["style"]})["style_tokens"]
            assert np.abs(tokens - f["style_tokens"]).max() < tol["style_tokens_abs"]
            feeds = {k: f[k] for k in ("content", "style_tokens", "style_index", "strength")}
            out = ort_available.run(folder / g["stylizer"], feeds)["stylized"]
            assert np.abs(out - f["stylized"]).max() < tol["stylized_abs"]
