"""Evaluation metrics and the Reinhard baseline."""
import pytest
import torch
import torch.nn.functional as F

from mambast import build_model, get_config
from mambast.evaluate import (edge_correlation, evaluate, histogram_distance, gram_distance, lab_to_rgb,
                              reinhard, rgb_to_lab, ssim)
from mambast.vgg import random_vgg


def smooth(seed, size=64, lo=0.2, hi=0.8):
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(size, size), mode="bilinear", align_corners=False)[0]
    return lo + (hi - lo) * x


@pytest.fixture(scope="module")
def vgg():
    return random_vgg(0)


def test_identical_images_score_perfectly(vgg):
    a = smooth(1)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-9)
    assert edge_correlation(a, a) == pytest.approx(1.0, abs=1e-9)
    assert histogram_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert gram_distance(vgg, a, a) == pytest.approx(0.0, abs=1e-9)


def test_different_images_score_worse(vgg):
    a, b = smooth(1), smooth(2)
    noisy = (a + 0.2 * torch.randn(a.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    assert ssim(a, noisy) < 0.9
    assert edge_correlation(a, b) < 0.9
    red = torch.zeros(3, 16, 16)
    red[0] = 0.9
    red[1:] = 0.1
    blue = red.flip(0)
    assert histogram_distance(red, blue) > 0.99
    assert 0 < histogram_distance(a, b) < 1
    assert gram_distance(vgg, a, b) > 0.01


def test_lab_round_trip():
    a = smooth(4, lo=0.0, hi=1.0)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(a)), a, atol=1e-5, rtol=0)
    white = rgb_to_lab(torch.ones(3, 1, 1))
    torch.testing.assert_close(white.flatten(), torch.tensor([100.0, 0.0, 0.0], dtype=torch.float64), atol=1e-3, rtol=0)


def test_reinhard_moves_lab_statistics_to_the_style():
    c, s = smooth(5, lo=0.3, hi=0.6), smooth(6, lo=0.35, hi=0.65)
    s = s * torch.tensor([1.0, 0.8, 0.6]).reshape(3, 1, 1)
    out = reinhard(c, s)
    lo, ls = rgb_to_lab(out), rgb_to_lab(s)
    torch.testing.assert_close(lo.mean((-2, -1)), ls.mean((-2, -1)), atol=0.5, rtol=0)
    torch.testing.assert_close(lo.std((-2, -1)), ls.std((-2, -1)), atol=0.5, rtol=0)
    assert histogram_distance(out, s) < histogram_distance(c, s)
    assert ssim(out, c) > 0.5


def test_evaluate_reports_baselines_and_model(vgg):
    model = build_model(get_config("tiny"), seed=1, scan_variant="sequential")
    contents, styles = [smooth(7, 32), smooth(8, 32)], [smooth(9, 32)]
    means, rows, sheet = evaluate(model, contents, styles, vgg, log=lambda *_: None)
    assert set(means) == {"content", "reinhard", "model"}
    assert len(rows) == 6
    assert means["content"]["ssim"] == pytest.approx(1.0)
    assert means["reinhard"]["hist_hellinger"] < means["content"]["hist_hellinger"]
    assert sheet.shape == (3, 2 + 2 * 34, 2 + 4 * 34)


def test_evaluate_scores_several_labelled_models_side_by_side(vgg):
    a = build_model(get_config("tiny"), seed=1, scan_variant="sequential")
    b = build_model(get_config("tiny"), seed=2, scan_variant="sequential")
    contents, styles = [smooth(7, 32)], [smooth(9, 32), smooth(10, 32)]
    means, rows, sheet = evaluate({"v1": a, "v2": b}, contents, styles, vgg, log=lambda *_: None)
    assert list(means) == ["content", "reinhard", "v1", "v2"]
    assert len(rows) == 8
    assert means["v1"]["gram"] != means["v2"]["gram"]          # different weights, different scores
    assert sheet.shape == (3, 2 + 2 * 34, 2 + 5 * 34)           # content | style | reinhard | v1 | v2


def test_evaluate_scores_each_model_at_each_strength(vgg):
    model = build_model(get_config("tiny"), seed=1, scan_variant="sequential")
    contents, styles = [smooth(7, 32)], [smooth(9, 32)]
    means, rows, sheet = evaluate({"m": model}, contents, styles, vgg, strengths=(0, 0.5, 1),
                                  log=lambda *_: None)
    assert list(means) == ["content", "reinhard", "m@0", "m@0.5", "m@1"]
    assert len(rows) == 5
    c, s = contents[0], styles[0]
    with torch.no_grad():
        tokens = model.encode_style(s[None])
        emb, x_c, _ = model.stylize_main(c[None], tokens, torch.zeros(1, 16, dtype=torch.long))
        recon = model.render(model.content_identity(emb, x_c))[0].clamp(0, 1)
        full = model(c[None], s[None], seed=0)[0].clamp(0, 1)
    assert means["m@0"]["ssim"] == pytest.approx(ssim(recon, c))      # strength 0: the reconstruction
    assert means["m@1"]["gram"] == pytest.approx(gram_distance(vgg, full, s))
    assert means["m@0"]["ssim"] != pytest.approx(means["m@1"]["ssim"])
    assert sheet.shape == (3, 2 + 1 * 34, 2 + 6 * 34)


@pytest.mark.parametrize("bad", [(), (1.5,), (-0.1, 1)])
def test_evaluate_rejects_strengths_outside_0_1(vgg, bad):
    model = build_model(get_config("tiny"), seed=1, scan_variant="sequential")
    with pytest.raises(ValueError, match="strengths"):
        evaluate(model, [smooth(7, 32)], [smooth(9, 32)], vgg, strengths=bad, log=lambda *_: None)


def test_evaluate_scores_only_the_given_pairs_with_cached_style_grams(vgg):
    contents, styles = [smooth(1, 32), smooth(2, 32)], [smooth(3, 32), smooth(4, 32), smooth(5, 32)]
    pairs = [(0, 2), (1, 0), (0, 0)]
    means, rows, sheet = evaluate(None, contents, styles, vgg, sheet_rows=2, log=lambda *_: None, pairs=pairs,
                                  sheet_size=16)
    assert [(r["content"], r["style"]) for r in rows if r["method"] == "reinhard"] == pairs
    for r in rows:  # the cached style grams give the same distance as computing them per output
        out = contents[r["content"]] if r["method"] == "content" else reinhard(contents[r["content"]], styles[r["style"]])
        assert r["gram"] == pytest.approx(gram_distance(vgg, out, styles[r["style"]]), rel=1e-9)
    assert tuple(sheet.shape) == (3, 2 * 18 + 2, 4 * 18 + 2)  # 2 rows of 4 tiles of 16 px, 2 px gaps


def test_merge_of_shards_equals_the_mean_over_all_pairs(tmp_path):
    import json
    from mambast.evaluate import merge
    rows = [{"content": i, "style": 0, "method": m, "ssim": i + k, "edge_corr": 0.0, "hist_hellinger": 1.0,
             "gram": float(i)} for i in range(3) for k, m in enumerate(("content", "reinhard"))]
    for name, part in (("a", rows[:2]), ("b", rows[2:])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps({"means": {"content": {}, "reinhard": {}}, "pairs": part}))
    means, merged = merge([tmp_path / "a", tmp_path / "b"])
    assert len(merged) == 6
    assert means["reinhard"]["ssim"] == pytest.approx((1 + 2 + 3) / 3)
    assert means["content"]["gram"] == pytest.approx(1.0)
