"""devicekit: pack for the GPU machine, split into parts it can return, join them back; and
device-train.sh end to end on CPU (tiny config) so the GPU session does not debug it on its clock."""
import json
import os
import subprocess
import sys

import pytest
import torch

from mambast.checkpoint import load_file, load_trained
from mambast.data import write_png
from mambast.devicekit import join, pack, reweight, split, weights_blob
from mambast.train import Trainer, _devices

from test_train import smooth_images, tiny_trainer

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture()
def trained(tmp_path):
    tr = tiny_trainer()
    tr.step()
    path = tmp_path / "last.pt"
    tr.save(path)
    return tr, path


def image_folders(tmp_path):
    folders = {}
    for kind, seed in (("content", 1), ("style", 2)):
        folder = tmp_path / f"img-{kind}"
        folder.mkdir()
        for i, img in enumerate(smooth_images(seed, 2, size=40)):
            write_png(folder / f"{kind}{i}.png", img)
        folders[kind] = folder
    return folders


def test_split_and_join_round_trip_the_weights_without_optimiser_state(trained, tmp_path):
    tr, path = trained
    parts = split(path, tmp_path / "parts", part_bytes=100_000)
    assert len(parts) > 1 and all(p.stat().st_size <= 100_000 for p in parts)
    joined = join(tmp_path / "parts" / "parts.json", tmp_path / "back" / "weights.pt")
    blob = load_file(joined)
    assert "optimizer" not in blob and blob["iteration"] == 1 and blob["devices"] == ["CPU"]
    model, prov = load_trained(joined, scan_variant="sequential")
    for k, v in tr.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert prov.startswith("trained: 1 iterations, CPU")


def test_join_refuses_a_damaged_or_missing_part(trained, tmp_path):
    _, path = trained
    parts = split(path, tmp_path / "parts", part_bytes=100_000)
    data = bytearray(parts[1].read_bytes())
    data[10] ^= 0xFF
    parts[1].write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match"):
        join(tmp_path / "parts" / "parts.json", tmp_path / "w.pt")
    parts[1].unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        join(tmp_path / "parts" / "parts.json", tmp_path / "w.pt")


def test_reweight_puts_a_runs_parts_into_the_pack_and_keeps_its_images(trained, tmp_path):
    tr, path = trained
    folders = image_folders(tmp_path)
    pack(path, [folders["content"]], [folders["style"]], tmp_path / "pack")
    images = sorted(p.name for p in (tmp_path / "pack").rglob("*.jpg"))
    tr.step()
    tr.step()
    tr.save(tmp_path / "later.pt")
    split(tmp_path / "later.pt", tmp_path / "parts", part_bytes=100_000)
    meta = reweight(tmp_path / "parts" / "parts.json", tmp_path / "pack")
    assert meta["iteration"] == 3
    assert json.loads((tmp_path / "pack" / "manifest.json").read_text())["iteration"] == 3
    assert sorted(p.name for p in (tmp_path / "pack").rglob("*.jpg")) == images
    assert not list((tmp_path / "pack").glob("*.tmp"))
    assert meta["sha256"] == json.loads((tmp_path / "parts" / "parts.json").read_text())["sha256"]
    blob = load_file(tmp_path / "pack" / "weights.pt")
    for k, v in tr.model.state_dict().items():
        assert torch.equal(blob["state_dict"][k], v), k
    # parts of another config are refused and the pack keeps its weights
    blob["config"] = "small"
    torch.save(blob, tmp_path / "small.pt")
    split(tmp_path / "small.pt", tmp_path / "parts2", part_bytes=100_000)
    before = {p.name: p.read_bytes() for p in (tmp_path / "pack").iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="config 'small'"):
        reweight(tmp_path / "parts2" / "parts.json", tmp_path / "pack")
    # parts of an earlier call (iteration 1 < 3) are refused unless asked for
    split(path, tmp_path / "parts3", part_bytes=100_000)
    with pytest.raises(ValueError, match="iteration 1, the pack at 3"):
        reweight(tmp_path / "parts3" / "parts.json", tmp_path / "pack")
    # parts that are no checkpoint at all
    torch.save({"foo": torch.zeros(3)}, tmp_path / "foo.pt")
    split_bytes = (tmp_path / "foo.pt").read_bytes()
    (tmp_path / "parts4").mkdir()
    (tmp_path / "parts4" / "weights.part00").write_bytes(split_bytes)
    import hashlib
    sha = hashlib.sha256(split_bytes).hexdigest()
    (tmp_path / "parts4" / "parts.json").write_text(json.dumps(
        {"parts": [{"name": "weights.part00", "bytes": len(split_bytes), "sha256": sha}], "bytes": len(split_bytes),
         "sha256": sha}))
    with pytest.raises(ValueError, match="not a mambast.train checkpoint"):
        reweight(tmp_path / "parts4" / "parts.json", tmp_path / "pack")
    # a pack that would no longer fit the device tool's limit
    with pytest.raises(ValueError, match="over the device tool's"):
        reweight(tmp_path / "parts" / "parts.json", tmp_path / "pack", repo=MODEL_DIR + "/..", limit=1000)
    # every refusal left the pack as it was, with no temporary file
    assert {p.name: p.read_bytes() for p in (tmp_path / "pack").iterdir() if p.is_file()} == before
    # the older parts, when asked for
    assert reweight(tmp_path / "parts3" / "parts.json", tmp_path / "pack", allow_older=True)["iteration"] == 1


def test_weights_blob_rejects_a_file_that_is_not_a_training_checkpoint(tmp_path):
    torch.save({"foo": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a mambast.train checkpoint"):
        weights_blob(tmp_path / "x.pt")


def test_pack_reencodes_images_and_refuses_what_the_device_tool_cannot_carry(trained, tmp_path):
    _, path = trained
    f = image_folders(tmp_path)
    m = pack(path, [f["content"]], [f["style"]], tmp_path / "pack", short_side=32)
    assert m["images"] == {"content": 2, "style": 2} and m["iteration"] == 1
    assert len(list((tmp_path / "pack" / "style").glob("*.jpg"))) == 2
    from PIL import Image
    with Image.open(next((tmp_path / "pack" / "content").glob("*.jpg"))) as im:
        assert min(im.size) == 32  # 40 -> 32
    repo = os.path.dirname(MODEL_DIR)
    with pytest.raises(ValueError, match="over the device tool's"):
        pack(path, [f["content"]], [f["style"]], tmp_path / "pack2", repo=repo, limit=1_000_000)


def test_init_weights_continues_the_count_with_a_fresh_optimiser_and_keeps_the_device_history(trained, tmp_path):
    tr, path = trained
    fresh = tiny_trainer(seed=9)
    fresh.init_weights(path)
    assert fresh.iteration == 1 and not fresh.opt.state
    assert torch.equal(next(iter(fresh.model.state_dict().values())), next(iter(tr.model.state_dict().values())))
    assert _devices({"provenance": "trained: 5 iterations, CUDA, random-VGG losses"}) == {"CUDA"}
    assert _devices({"provenance": "trained: 9 iterations (notes, more), CPU+CUDA, random-VGG"}) == {"CPU", "CUDA"}
    assert not torch.equal(fresh.gen.get_state(), tiny_trainer(seed=9).gen.get_state())  # new data order
    fresh.devices |= {"CUDA"}
    assert "CPU+CUDA" in fresh.provenance()
    with pytest.raises(ValueError, match="config"):
        Trainer(config="small", content=fresh.content, style=fresh.style, crop=32, batch=1).init_weights(path)


def test_device_train_script_runs_from_a_pack_and_returns_joinable_parts(trained, tmp_path):
    """The GPU script with CPU overrides (its extra flags come last, so argparse takes them)."""
    tr, path = trained
    f = image_folders(tmp_path)
    pack(path, [f["content"]], [f["style"]], tmp_path / "pack", short_side=40)
    out = tmp_path / "out"
    out.mkdir()
    def call(iters, extra=()):
        for f in out.iterdir():
            f.unlink()
        return subprocess.run(
            ["bash", os.path.join(MODEL_DIR, "device-train.sh"), "--pack", str(tmp_path / "pack"), "--minutes", "5",
             "--device", "cpu", "--config", "tiny", "--crop", "32", "--batch", "1", "--iters", str(iters),
             "--threads", "1", "--content-layers", "relu4_1", "relu5_1", *extra],
            env=dict(os.environ, OUT=str(out), MAMBAST_PYTHON=sys.executable, MAMBAST_RUN_DIR=str(tmp_path / "run")),
            capture_output=True, text=True, timeout=300)
    run = call(3)
    assert run.returncode == 0, run.stdout + run.stderr
    names = sorted(p.name for p in out.iterdir())
    assert len(names) <= 8 and "parts.json" in names and "log.jsonl" in names and "train.log" in names
    assert "initialised from" in run.stdout
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == [2, 3]
    model, prov = load_trained(join(out / "parts.json", tmp_path / "w.pt"), scan_variant="sequential")
    assert prov.startswith("trained: 3 iterations, CPU")
    # still warm, same pack: resumes (Adam moments included)
    run = call(4)
    assert run.returncode == 0 and "resumed at iteration 3" in run.stdout, run.stdout + run.stderr
    # the pack reweighted with what the machine just returned: still warm, so it resumes too
    reweight(out / "parts.json", tmp_path / "pack")
    run = call(5)
    assert run.returncode == 0 and "resumed at iteration 4" in run.stdout, run.stdout + run.stderr
    # a pack of other weights on the same machine starts from them, not from the old run
    tr.step()
    tr.save(tmp_path / "other.pt")
    pack(tmp_path / "other.pt", [f["content"]], [f["style"]], tmp_path / "pack", short_side=40)
    run = call(5)
    assert run.returncode == 0 and "initialised from" in run.stdout and "at iteration 2" in run.stdout, \
        run.stdout + run.stderr
    assert call(5, ["--out", "/tmp/x"]).returncode == 2
