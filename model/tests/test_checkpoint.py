"""Parameter names and shapes equal the authors' checkpoints; the three files load strictly."""
import pytest
import torch

from conftest import KEYS_TSV
from mambast import build_model, get_config
from mambast.checkpoint import load_official, load_parts, official_iteration

PART_OF_FILE = {"embedding": "embedding", "mamba": "mamba", "decoder": "decoder"}


def official_keys():
    if not KEYS_TSV.exists():
        pytest.skip(f"{KEYS_TSV} not present")
    parts = {}
    for line in KEYS_TSV.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        file, key, shape, dtype = line.split("\t")
        part = PART_OF_FILE[file.split("_iter_")[0]]
        parts.setdefault(part, {})[key] = (tuple(int(s) for s in shape.split("x")), dtype)
    return parts


def fake_state_dicts(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {part: {k: torch.randn(shape, generator=g) for k, (shape, _) in keys.items()}
            for part, keys in official_keys().items()}


def test_base_parameters_equal_tsv():
    expected = official_keys()
    model = build_model(get_config("base"))
    for part, keys in expected.items():
        sd = getattr(model, part).state_dict()
        assert set(sd) == set(keys), part
        for k, (shape, dtype) in keys.items():
            assert tuple(sd[k].shape) == shape, k
            assert str(sd[k].dtype) == f"torch.{dtype}", k
    assert sum(len(k) for k in expected.values()) == 189
    n_mamba = sum(v.numel() for v in model.mamba.state_dict().values())
    assert len(expected["mamba"]) == 169 and abs(n_mamba - 23.5e6) < 0.1e6


def test_fake_official_files_load_strictly(tmp_path):
    sds = fake_state_dicts()
    paths = []
    for part in ("embedding", "mamba", "decoder"):
        p = tmp_path / f"{part}_iter_160000.pth"
        torch.save(sds[part], p)
        paths.append(p)
    model = load_official(*paths)
    assert model.cfg.name == "base"
    for part in ("embedding", "mamba", "decoder"):
        got = getattr(model, part).state_dict()
        for k, v in sds[part].items():
            assert torch.equal(got[k], v), (part, k)
    assert official_iteration(paths[1]) == "160000"


@pytest.mark.parametrize("part", ["embedding", "mamba", "decoder"])
def test_strict_loading_rejects_missing_and_unexpected(part):
    sds = fake_state_dicts()
    model = build_model(get_config("base"))
    broken = dict(sds)
    broken[part] = dict(sds[part])
    broken[part].pop(next(iter(broken[part])))
    with pytest.raises(RuntimeError):
        load_parts(model, broken["embedding"], broken["mamba"], broken["decoder"])
    broken[part] = dict(sds[part], extra_tensor=torch.zeros(1))
    with pytest.raises(RuntimeError):
        load_parts(model, broken["embedding"], broken["mamba"], broken["decoder"])


def test_unused_stored_tensors_exist_in_every_config():
    for name in ("base", "small", "tiny"):
        sd = build_model(get_config(name)).state_dict()
        assert "mamba.new_ps.weight" in sd and "mamba.encoder_c.layers.0.skip_scale2" in sd
        assert "mamba.encoder_s.layers.0.self_attention.in_style_proj.weight" in sd
