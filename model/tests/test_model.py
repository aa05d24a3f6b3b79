"""Model semantics: determinism, any H x W multiple of 8, any style size, strength, style_index."""
import numpy as np
import pytest
import torch

from mambast import build_model, get_config, style_index
from mambast.style_index import SplitMix64


@pytest.fixture(scope="module")
def tiny():
    return build_model(get_config("tiny"), seed=3, scan_variant="parallel")


def images(seed, b, h, w):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def index_for(seeds, ls, l):
    return torch.stack([torch.from_numpy(style_index(s, ls, l)) for s in seeds])


# ---- style_index --------------------------------------------------------------------------

def test_splitmix64_reference_vectors():
    r = SplitMix64(0)
    assert [r.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    r = SplitMix64(1234567)
    assert [r.next() for _ in range(2)] == [6457827717110365317, 3203168211198807973]


def test_style_index_pinned_values():
    assert style_index(42, 10, 10).tolist() == [0, 9, 5, 8, 6, 4, 7, 2, 1, 3]
    assert style_index(0, 16, 16).tolist() == [2, 10, 14, 11, 6, 1, 5, 13, 8, 3, 4, 7, 12, 9, 0, 15]


@pytest.mark.parametrize("ls,l", [(16, 16), (60, 64), (96, 64), (1, 5), (4096, 1024)])
def test_style_index_properties(ls, l):
    idx = style_index(9, ls, l)
    assert idx.dtype == np.int64 and idx.shape == (l,)
    assert idx.min() >= 0 and idx.max() < ls
    if ls == l:
        assert sorted(idx.tolist()) == list(range(ls))  # a permutation
    if ls >= l:
        assert len(set(idx.tolist())) == l  # distinct tokens
    assert np.array_equal(idx, style_index(9, ls, l))
    assert not np.array_equal(style_index(9, 64, 64), style_index(10, 64, 64))


def test_style_index_accepts_full_uint64_seed():
    assert style_index(2**64 - 1, 8, 8).shape == (8,)
    assert np.array_equal(style_index(2**64, 8, 8), style_index(0, 8, 8))  # seeds are taken mod 2^64


# ---- model --------------------------------------------------------------------------------

def test_deterministic(tiny):
    c, s = images(0, 1, 32, 48), images(1, 1, 40, 24)
    with torch.no_grad():
        a = tiny(c, s, seed=5, strength=torch.tensor([0.7]))
        b = tiny(c, s, seed=5, strength=torch.tensor([0.7]))
        other = tiny(c, s, seed=6, strength=torch.tensor([0.7]))
    assert torch.equal(a, b)
    assert not torch.equal(a, other)


def test_same_weights_from_same_seed():
    a = build_model(get_config("tiny"), seed=11).state_dict()
    b = build_model(get_config("tiny"), seed=11).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("h,w", [(16, 16), (16, 40), (56, 24), (64, 96)])
def test_non_square_content(tiny, h, w):
    with torch.no_grad():
        y = tiny(images(h, 2, h, w), images(1, 2, 32, 32), seed=[1, 2])
    assert y.shape == (2, 3, h, w) and torch.isfinite(y).all()


@pytest.mark.parametrize("hs,ws", [(8, 8), (24, 80), (72, 16), (48, 48)])
def test_any_style_size(tiny, hs, ws):
    with torch.no_grad():
        tokens = tiny.encode_style(images(hs + ws, 1, hs, ws))
        assert tokens.shape == (1, (hs // 8) * (ws // 8), 32)
        y = tiny.stylize(images(0, 1, 32, 40), tokens, index_for([3], tokens.shape[1], 20))
    assert y.shape == (1, 3, 32, 40) and torch.isfinite(y).all()


def test_scan_variants_agree_in_model(tiny):
    c, s = images(0, 1, 24, 40), images(1, 1, 32, 32)
    out = {}
    with torch.no_grad():
        for v in ("reference", "sequential", "parallel"):
            tiny.scan.variant = v
            out[v] = tiny(c, s, seed=1)
    tiny.scan.variant = "parallel"
    for v in ("sequential", "parallel"):
        assert torch.allclose(out[v], out["reference"], atol=1e-5)


def _pieces(model, c, s, seed):
    with torch.no_grad():
        tokens = model.encode_style(s)
        idx = index_for([seed] * c.shape[0], tokens.shape[1], (c.shape[2] // 8) * (c.shape[3] // 8))
        emb, x_c, f_cs = model.stylize_main(c, tokens, idx)
        f_cc = model.content_identity(emb, x_c)
    return tokens, idx, f_cs, f_cc


def test_strength_zero_is_content_identity_path_exactly(tiny):
    c, s = images(0, 2, 32, 48), images(1, 2, 40, 40)
    tokens, idx, f_cs, f_cc = _pieces(tiny, c, s, 4)
    with torch.no_grad():
        y0 = tiny.stylize(c, tokens, idx, torch.zeros(2))
        assert torch.equal(y0, tiny.render(f_cc))
        # f_cc does not depend on the style at all
        y0_other = tiny.stylize(c, tiny.encode_style(images(9, 2, 16, 24)), index_for([1, 2], 6, 24), torch.zeros(2))
        assert torch.equal(y0, y0_other)


def test_strength_one_skips_identity_path_and_equals_full_style(tiny, monkeypatch):
    c, s = images(0, 1, 32, 48), images(1, 1, 40, 40)
    tokens, idx, f_cs, _ = _pieces(tiny, c, s, 4)
    calls = []
    monkeypatch.setattr(tiny, "content_identity", lambda *a: calls.append(1))
    with torch.no_grad():
        y1 = tiny.stylize(c, tokens, idx, torch.ones(1))
        y_none = tiny.stylize(c, tokens, idx)
    assert not calls
    assert torch.equal(y1, tiny.render(f_cs)) and torch.equal(y1, y_none)


def test_strength_blends_per_batch_item(tiny):
    c, s = images(0, 2, 32, 48), images(1, 2, 40, 40)
    tokens, idx, f_cs, f_cc = _pieces(tiny, c, s, 4)
    st = torch.tensor([1.0, 0.25])
    with torch.no_grad():
        y = tiny.stylize(c, tokens, idx, st)
        expect = tiny.render(0.75 * f_cc[1:] + 0.25 * f_cs[1:])
        alone = tiny.stylize(c[:1], tokens[:1], idx[:1], st[:1])
    # (batch-size dependent conv numerics: ~2e-6)
    assert torch.allclose(y[1:], expect, atol=1e-5)
    assert torch.allclose(y[:1], alone, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 3, 20, 32), (1, 3, 8, 32), (1, 1, 32, 32)])
def test_rejects_bad_content_sizes(tiny, shape):
    with pytest.raises(ValueError):
        tiny(torch.rand(shape), torch.rand(1, 3, 16, 16))
