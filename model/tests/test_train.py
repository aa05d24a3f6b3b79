"""Training code: random VGG determinism, finite losses, resumable checkpoints, PNG writer."""
import struct
import zlib

import pytest
import torch
import torch.nn.functional as F

from mambast.checkpoint import load_trained
from mambast.data import ImagePool, write_png
from mambast.losses import content_loss, scale_matched_content_layers
from mambast.train import LrSchedule, Trainer
from mambast.vgg import calibration_batch, random_vgg


def smooth_images(seed, n, size=48):
    g = torch.Generator().manual_seed(seed)
    return [F.interpolate(torch.rand(1, 3, 6, 6, generator=g), size=(size, size), mode="bilinear",
                          align_corners=False)[0] for _ in range(n)]


def tiny_trainer(**kw):
    args = dict(config="tiny", content=ImagePool(smooth_images(1, 3)), style=ImagePool(smooth_images(2, 3)),
                crop=32, batch=2, seed=5, scan="sequential")
    args.update(kw)
    return Trainer(**args)


@pytest.fixture(scope="module")
def vgg():
    return random_vgg(0)


def test_random_vgg_is_deterministic_for_a_seed_and_differs_between_seeds(vgg):
    again = random_vgg(0)
    other = random_vgg(1)
    for a, b in zip(vgg.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert not torch.equal(vgg.vgg[2].weight, other.vgg[2].weight)
    x = calibration_batch(99, n=2)
    for fa, fb in zip(vgg(x), again(x)):
        assert torch.equal(fa, fb)


def test_random_vgg_activations_neither_vanish_nor_explode(vgg):
    feats = vgg(calibration_batch(1234, n=2, size=64))
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]
    for f in feats:
        rms = float(f.pow(2).mean().sqrt())
        assert 0.05 < rms < 20, rms
    assert all(not p.requires_grad for p in vgg.parameters())


def test_training_steps_give_finite_losses_and_a_resumable_checkpoint(tmp_path):
    straight = tiny_trainer()
    recs = [straight.step() for _ in range(3)]
    for r in recs:
        for k in ("content", "style", "identity1", "identity2", "total"):
            assert torch.isfinite(torch.tensor(r[k])), (k, r)
        assert r["total"] > 0

    first = tiny_trainer()
    first.step()
    first.save(tmp_path / "last.pt")
    resumed = tiny_trainer()
    resumed.load(tmp_path / "last.pt")
    assert resumed.iteration == 1
    for a, b in zip(first.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    later = [resumed.step() for _ in range(2)]
    assert later[-1]["total"] == pytest.approx(recs[-1]["total"], rel=1e-5)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_training_checkpoint_loads_for_export_with_provenance(tmp_path):
    tr = tiny_trainer()
    tr.step()
    tr.save(tmp_path / "last.pt")
    model, prov = load_trained(tmp_path / "last.pt")
    assert model.cfg.name == "tiny"
    assert prov.startswith("trained: 1 iterations, CPU, random-VGG losses")


def test_loss_falls_when_fitting_one_batch():
    tr = tiny_trainer(lr=2e-3)
    c, s = tr.next_batch()
    tr.next_batch = lambda: (c, s)
    totals = []
    for _ in range(6):
        totals.append(tr.step()["total"])
    assert min(totals[-2:]) < totals[0]


def test_trainer_rejects_a_crop_that_is_not_a_multiple_of_8():
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny_trainer(crop=36)


def test_write_png_round_trips_pixels(tmp_path):
    img = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "x.png"
    write_png(path, img)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (7, 5)
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41:41 + idat_len])
    rows = [raw[r * (1 + 21) + 1:(r + 1) * (1 + 21)] for r in range(5)]
    pixels = torch.tensor(list(b"".join(rows)), dtype=torch.uint8).reshape(5, 7, 3).permute(2, 0, 1)
    assert torch.equal(pixels, (img * 255).round().to(torch.uint8))


def test_lr_schedule_warms_up_then_decays_by_cosine_to_the_final_rate():
    s = LrSchedule(3e-4, 1e-5, start=333, warmup=30, end=2733)
    assert s(0) == pytest.approx(3e-4) and s(332) == pytest.approx(3e-4)  # before the schedule: constant
    assert s(333) == pytest.approx(3e-5)                                   # warm-up starts at lr / 10
    assert s(348) == pytest.approx(3e-5 + 0.5 * 2.7e-4)
    assert s(363) == pytest.approx(3e-4)                                   # peak after warm-up
    assert s((363 + 2733) // 2) == pytest.approx((3e-4 + 1e-5) / 2, rel=1e-3)
    assert s(2733) == pytest.approx(1e-5) and s(9999) == pytest.approx(1e-5)
    rates = [s(i) for i in range(363, 2734)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))                   # never rises while decaying


def test_lr_schedule_defaults_to_the_authors_constant_rate_and_rejects_bad_settings():
    assert {LrSchedule(1e-4)(i) for i in (0, 10, 10 ** 6)} == {1e-4}
    with pytest.raises(ValueError, match="positive"):
        LrSchedule(-1e-4)
    with pytest.raises(ValueError, match="--iters"):
        LrSchedule(3e-4, 1e-5, start=100, warmup=50, end=120)


def test_trainer_applies_the_schedule_and_skips_a_non_finite_loss(monkeypatch):
    tr = tiny_trainer(schedule=LrSchedule(2e-4, 1e-5, start=0, warmup=0, end=4))
    rec = tr.step()
    assert rec["lr"] == pytest.approx(2e-4) and tr.opt.param_groups[0]["lr"] == pytest.approx(2e-4)
    before = [p.detach().clone() for p in tr.model.parameters()]
    real = tr.losses

    def poisoned(c, s, seeds):
        parts, out = real(c, s, seeds)
        parts["total"] = parts["total"] * float("nan")
        return parts, out
    monkeypatch.setattr(tr, "losses", poisoned)
    tr.step()
    assert all(torch.equal(a, p) for a, p in zip(before, tr.model.parameters()))  # no update from a NaN
    for _ in range(8):
        tr.step()
    with pytest.raises(FloatingPointError, match="10 iterations"):
        tr.step()


def test_scale_matched_content_layers_keep_the_authors_feature_map_sizes():
    assert scale_matched_content_layers(256) == ("relu4_1", "relu5_1")
    assert scale_matched_content_layers(128) == ("relu3_1", "relu4_1")
    assert scale_matched_content_layers(64) == ("relu2_1", "relu3_1")
    assert scale_matched_content_layers(32) == ("relu1_1", "relu2_1")
    for bad in (48, 16, 512, 0, -64):
        with pytest.raises(ValueError, match="scale-matched"):
            scale_matched_content_layers(bad)


def test_content_loss_reads_only_the_named_layers():
    g = torch.Generator().manual_seed(3)
    same = [torch.rand(2, 4, 8, 8, generator=g) for _ in range(5)]
    other = [f.clone() for f in same]
    other[1] = torch.rand(2, 4, 8, 8, generator=g)  # differs at relu2_1 only
    assert float(content_loss(other, same)) == 0.0  # authors' relu4_1 + relu5_1 do not see it
    assert float(content_loss(other, same, ("relu2_1", "relu3_1"))) > 0.1


def test_trainer_content_layers_reach_the_loss_and_the_provenance():
    tr = tiny_trainer(content_layers=("relu1_1", "relu2_1"))
    assert "content at relu1_1+relu2_1" in tr.provenance()
    assert tr.settings["content_layers"] == ["relu1_1", "relu2_1"]
    c, s = tr.next_batch()
    seeds = list(range(3 * c.shape[0]))
    shallow = float(tr.losses(c, s, seeds)[0]["content"])
    tr.content_layers = ("relu4_1", "relu5_1")
    assert float(tr.losses(c, s, seeds)[0]["content"]) != pytest.approx(shallow, rel=1e-3)
    assert "content at" not in tr.provenance()
    with pytest.raises(ValueError, match="--content-layers"):
        tiny_trainer(content_layers=("relu9_9",))


def test_recomputed_scan_gives_the_same_gradients_and_saves_less():
    grads, saved = {}, {}
    for recompute in (False, True):
        tr = tiny_trainer(recompute_scan=recompute)
        c, s = tr.next_batch()
        sizes = []

        def pack(t):
            sizes.append(t.numel() * t.element_size())
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            parts, _ = tr.losses(c, s, list(range(3 * c.shape[0])))
        parts["total"].backward()
        grads[recompute] = [p.grad.clone() for p in tr.model.parameters() if p.grad is not None]
        saved[recompute] = sum(sizes)
    assert len(grads[True]) == len(grads[False]) > 0
    for a, b in zip(grads[True], grads[False]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert saved[True] < saved[False]
    assert tiny_trainer().model.scan.recompute is False  # CPU default: no recompute


def test_style_index_follows_the_style_tokens_device(monkeypatch):
    """torch.gather needs index and input on one device (CUDA training); check the index's device."""
    tr = tiny_trainer()
    c, s = tr.next_batch()
    real = torch.gather
    seen = []

    def spy(inp, dim, index, *a, **kw):
        seen.append(index.device == inp.device)
        return real(inp, dim, index, *a, **kw)
    monkeypatch.setattr(torch, "gather", spy)
    tokens = tr.model.encode_style(s)
    monkeypatch.setattr(tr.model, "encode_style", lambda style: tokens.to("meta"))
    with pytest.raises(Exception):
        tr.model(c, s, seed=1)  # meta tokens: fails after the index is moved, or before on old code
    assert seen == [True]


def _have_resnet18():
    from mambast.resnet import default_path
    try:
        return default_path().exists()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not _have_resnet18(), reason="ResNet18.onnx not restored (model/tools/resnet18/fetch.sh)")
def test_resnet18_losses_train_and_are_named_in_the_provenance():
    big = dict(content=ImagePool(smooth_images(1, 2, 80)), style=ImagePool(smooth_images(2, 2, 80)), crop=64, batch=1)
    plain = tiny_trainer(perceptual="resnet18", tv=0.5, **big)
    smoothed = tiny_trainer(perceptual="resnet18-swag", **big)
    r1, r2 = plain.step(), smoothed.step()
    for r in (r1, r2):
        assert all(torch.isfinite(torch.tensor(r[k])) for k in ("content", "style", "identity1", "identity2", "total"))
    assert r1["tv"] > 0 and "tv" not in r2
    assert r2["style"] > r1["style"]  # SWAG adds the smoothed taps' statistics to the raw ones (same data)
    assert "ImageNet-ResNet-18+TV 0.5" in plain.provenance()
    assert "ImageNet-ResNet-18+SWAG" in smoothed.provenance()
    with pytest.raises(ValueError):
        tiny_trainer(perceptual="alexnet", **big)
    with pytest.raises(ValueError, match="crop >= 64"):
        tiny_trainer(perceptual="resnet18")  # crop 32: the last tap would be 1x1


def test_keep_iters_and_pool_cache(tmp_path):
    from mambast.train import main
    for folder, seed in (("c", 1), ("s", 2)):
        for i, img in enumerate(smooth_images(seed, 2)):
            write_png(tmp_path / folder / f"{i}.png", img)
    args = ["--config", "tiny", "--content", str(tmp_path / "c"), "--style", str(tmp_path / "s"), "--crop", "32",
            "--batch", "1", "--iters", "4", "--scan", "sequential", "--keep-iters", "2", "--sample-iters", "100",
            "--pool-cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    main(args)
    kept = sorted(p.name for p in (tmp_path / "run").glob("iter_*.pt"))
    assert kept == ["iter_000002.pt", "iter_000004.pt"]
    model, prov = load_trained(tmp_path / "run" / "iter_000002.pt")
    assert "2 iterations" in prov
    assert len(list((tmp_path / "cache").glob("pool-*.pt"))) == 2
    pool = ImagePool.from_paths([tmp_path / "c"], 256, tmp_path / "cache")  # served from the cache
    assert torch.equal(pool.images[0], ImagePool.from_paths([tmp_path / "c"], 256).images[0])
