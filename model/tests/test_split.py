"""The seeded held-out split of the shared training set."""
from pathlib import Path

import pytest

from mambast.split import (HELDOUT_CONTENT, HELDOUT_STYLE, read_manifest, read_pairs, split_files, split_manifest,
                           write_split)

SHARED = Path("/work/shared/data/train")


def fake_manifest(n_content=60, n_style=40):
    return {"content": [f"content/c{i:03d}.jpg" for i in range(n_content)],
            "style": [f"style/s{i:03d}.jpg" for i in range(n_style)]}


def test_split_is_deterministic_disjoint_and_complete():
    m = fake_manifest()
    a, b = split_manifest(m), split_manifest({k: list(reversed(v)) for k, v in m.items()})
    assert a == b  # independent of manifest order
    for kind, n in (("content", HELDOUT_CONTENT), ("style", HELDOUT_STYLE)):
        held, train = a[f"heldout-{kind}"], a[f"train-{kind}"]
        assert len(held) == n and not set(held) & set(train)
        assert sorted(held + train) == sorted(m[kind])
    assert len(a["pairs"]) == HELDOUT_CONTENT
    assert [c for c, _ in a["pairs"]] == a["heldout-content"]
    assert [s for _, s in a["pairs"][:HELDOUT_STYLE]] == a["heldout-style"]
    assert split_manifest(m, seed=1)["heldout-content"] != a["heldout-content"]


def test_adding_files_keeps_held_out_files_out_of_training():
    held, _ = split_files([f"f{i}" for i in range(100)], 10)
    held2, train2 = split_files([f"f{i}" for i in range(150)], 10)
    # a file only leaves the held-out side when a new file sorts before it; none joins training from it
    # without one of the new files taking its place
    assert set(held) - set(held2) <= set(train2) and len(set(held2) - set(held)) == len(set(held) - set(held2))
    with pytest.raises(ValueError):
        split_files(["a", "b"], 2)


def test_write_split_links_images_and_writes_pairs(tmp_path):
    data = tmp_path / "data"
    m = fake_manifest()
    lines = ["file\tkind\tsource"]
    for kind, files in m.items():
        for f in files:
            (data / f).parent.mkdir(parents=True, exist_ok=True)
            (data / f).write_bytes(b"x")
            lines.append(f"{f}\t{kind}\trepo")
    (data / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    sp = write_split(data, tmp_path / "out")
    assert len(list((tmp_path / "out" / "train-content").iterdir())) == 60 - HELDOUT_CONTENT
    assert {p.name for p in (tmp_path / "out" / "heldout-style").iterdir()} == {Path(f).name for f in sp["heldout-style"]}
    pairs = read_pairs(tmp_path / "out" / "pairs.tsv")
    assert [(p.relative_to(data.resolve()).as_posix(), q.relative_to(data.resolve()).as_posix()) for p, q in pairs] \
        == sp["pairs"]
    write_split(data, tmp_path / "out")  # re-running replaces the links
    (data / m["style"][0]).unlink()
    with pytest.raises(FileNotFoundError):
        write_split(data, tmp_path / "out2")


@pytest.mark.skipif(not (SHARED / "MANIFEST.tsv").exists(), reason="shared training set absent")
def test_shared_set_split_sizes():
    sp = split_manifest(read_manifest(SHARED / "MANIFEST.tsv"))
    assert (len(sp["train-content"]), len(sp["train-style"])) == (456, 184)
    assert sp["heldout-content"][0] == "content/content-dpst-style-tar47.jpg"  # pins the rule's seed and key
