"""The held-out split of the shared training set (../shared/data/train), by a seeded rule.

Rule (docs/evaluation.md, "Held-out split"; written down before any evaluation on it):
* each file named in MANIFEST.tsv gets the key SHA-256("<seed>:<file>") (hex; `file` as the manifest
  writes it, e.g. `content/content-adaattn-14.jpg`), seed 20261207;
* per kind, files sorted by key: the first 40 photos and the first 25 artworks are held out, never
  trained on; all others are training images;
* evaluation pairs: held-out photo i (key order, i = 0..39) with held-out artwork i mod 25.
A key depends only on the seed and the file's own name, so adding files to the set never moves an
existing file between the two sides unless its key sorts into the first 40 / 25.

    python -m mambast.split --data ../../shared/data/train --out ../artifacts/training-data/split
writes OUT/{train,heldout}-{content,style}/ (symbolic links) and OUT/pairs.tsv (content, style paths).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

SEED = 20261207
HELDOUT_CONTENT = 40
HELDOUT_STYLE = 25


def key(name: str, seed: int = SEED) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def read_manifest(path) -> dict[str, list[str]]:
    """MANIFEST.tsv -> {"content": [file, ...], "style": [...]} (manifest order)."""
    out: dict[str, list[str]] = {"content": [], "style": []}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            kind = row.get("kind", "")
            if kind not in out:
                raise ValueError(f"{path}: unknown kind {kind!r} for {row.get('file')!r}")
            out[kind].append(row["file"])
    for kind, files in out.items():
        if len(set(files)) != len(files):
            raise ValueError(f"{path}: duplicate {kind} files")
    return out


def split_files(files: list[str], n_heldout: int, seed: int = SEED) -> tuple[list[str], list[str]]:
    """-> (heldout in key order, train in key order)."""
    if len(files) <= n_heldout:
        raise ValueError(f"need more than {n_heldout} files to hold {n_heldout} out, got {len(files)}")
    ordered = sorted(files, key=lambda f: key(f, seed))
    return ordered[:n_heldout], ordered[n_heldout:]


def split_manifest(manifest: dict[str, list[str]], seed: int = SEED, n_content: int = HELDOUT_CONTENT,
                   n_style: int = HELDOUT_STYLE) -> dict:
    hc, tc = split_files(manifest["content"], n_content, seed)
    hs, ts = split_files(manifest["style"], n_style, seed)
    pairs = [(c, hs[i % len(hs)]) for i, c in enumerate(hc)]
    return {"heldout-content": hc, "heldout-style": hs, "train-content": tc, "train-style": ts, "pairs": pairs}


def write_split(data: Path, out: Path, seed: int = SEED) -> dict:
    data, out = Path(data).resolve(), Path(out)
    sp = split_manifest(read_manifest(data / "MANIFEST.tsv"), seed)
    for folder in ("train-content", "train-style", "heldout-content", "heldout-style"):
        d = out / folder
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():
            old.unlink()
        for f in sp[folder]:
            src = data / f
            if not src.is_file():
                raise FileNotFoundError(f"{src} is in the manifest but missing")
            (d / Path(f).name).symlink_to(src)
    with open(out / "pairs.tsv", "w", encoding="utf-8") as f:
        for c, s in sp["pairs"]:
            f.write(f"{data / c}\t{data / s}\n")
    return sp


def read_pairs(path) -> list[tuple[Path, Path]]:
    pairs = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            c, s = line.split("\t")
            pairs.append((Path(c), Path(s)))
    return pairs


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mambast.split", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder with MANIFEST.tsv, content/ and style/")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=SEED)
    a = p.parse_args(argv)
    sp = write_split(Path(a.data), Path(a.out), a.seed)
    for k in ("train-content", "train-style", "heldout-content", "heldout-style", "pairs"):
        print(f"{Path(a.out) / k}: {len(sp[k])}")


if __name__ == "__main__":
    main()
