"""Move a training run to the lent GPU machine (the `device` tool) and back, within its limits.

The device machine receives the repository's tracked files plus at most 64 MiB in all (the
tracked tree counts), and gives back at most 8 files of 16 MiB each. A full `last.pt` of `small`
(weights + Adam moments, ~58 MB) fits neither way, and the training images live outside the
repository. So:

    pack   CKPT (or an exported folder such as models/default, whose weights mambast.onnx_import
           reads back exactly) + image folders -> a folder to carry: weights.pt (model weights, iteration count,
           provenance; no optimiser state) and the images re-encoded at a short side of 512 as JPEG;
           refuses when the folder plus the tracked tree would not fit.
    split  a checkpoint -> weights-only parts of <= 15 MiB each + parts.json (SHA-256 of each).
    join   parts.json + parts -> one weights.pt, every part's hash checked.
    reweight  parts.json + parts -> a pack's weights.pt and manifest, its images kept: the next call
           starts where the last one stopped (a device machine goes back 30 s after a call, so
           each call starts fresh from what it carries).

weights.pt loads everywhere a checkpoint does: `mambast.train --init`, `mambast.export
--checkpoint`, `mambast.evaluate --checkpoint`. model/device-train.sh is the command that runs there.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
from pathlib import Path

import torch

from .checkpoint import load_file
from .data import list_images

CARRY_LIMIT = 64 * 2 ** 20
PART_LIMIT = 15 * 2 ** 20


def weights_blob(path) -> dict:
    """A train.py checkpoint (or a weights.pt, or an exported model folder such as models/default,
    read back by mambast.onnx_import) -> the weights-only dict, without optimiser state."""
    if isinstance(path, (str, Path)) and Path(path).is_dir():
        from .onnx_import import import_as_checkpoint
        return import_as_checkpoint(path)
    blob = load_file(path)
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob:
        raise ValueError(f"{path} is not a mambast.train checkpoint (needs 'config' and 'state_dict')")
    keep = ("config", "provenance", "state_dict", "iteration", "train_seconds", "settings", "devices")
    return {k: blob[k] for k in keep if k in blob}


def tracked_bytes(repo: Path) -> int:
    """Bytes of the files git tracks in `repo`: what the device tool sends besides carried paths."""
    names = subprocess.run(["git", "-C", str(repo), "ls-files", "-z"], check=True, capture_output=True).stdout
    return sum((repo / n).stat().st_size for n in names.decode().split("\0") if n and (repo / n).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _reencode(src: Path, dst: Path, short_side: int, quality: int) -> None:
    from PIL import Image
    with Image.open(src) as im:
        im = im.convert("RGB")
        if min(im.size) > short_side:
            s = short_side / min(im.size)
            im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))), Image.BICUBIC)
        im.save(dst, "JPEG", quality=quality)


def pack(checkpoint, content, style, out, short_side: int = 512, quality: int = 90, repo=None,
         limit: int = CARRY_LIMIT) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stray in out.glob("*.tmp"):  # left by an interrupted reweight: it would count against the limit
        stray.unlink()
    blob = weights_blob(checkpoint)
    torch.save(blob, out / "weights.pt")
    counts = {}
    for kind, paths in (("content", content), ("style", style)):
        folder = out / kind
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.jpg"):
            old.unlink()
        files = list_images(paths)
        if not files:
            raise ValueError(f"no {kind} images in {', '.join(map(str, paths))}")
        for i, f in enumerate(files):
            _reencode(f, folder / f"{i:03d}-{f.stem[:40]}.jpg", short_side, quality)
        counts[kind] = len(files)
    manifest = {"config": blob["config"], "iteration": int(blob.get("iteration", 0)),
                "provenance": blob.get("provenance", ""), "images": counts, "short_side": short_side,
                "bytes": folder_bytes(out)}
    if repo is not None:
        manifest["tracked_bytes"] = tracked_bytes(Path(repo))
        total = manifest["bytes"] + manifest["tracked_bytes"]
        if total > limit:
            raise ValueError(f"pack {out} ({manifest['bytes'] / 2**20:.1f} MiB) + tracked files "
                             f"({manifest['tracked_bytes'] / 2**20:.1f} MiB) = {total / 2**20:.1f} MiB is over the "
                             f"device tool's {limit / 2**20:.0f} MiB; lower --short-side or use fewer images")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def split(checkpoint, out, part_bytes: int = PART_LIMIT) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(weights_blob(checkpoint), buf)
    data = buf.getvalue()
    parts, entries = [], []
    for i in range(0, max(1, len(data)), part_bytes):
        chunk = data[i:i + part_bytes]
        p = out / f"weights.part{len(parts):02d}"
        p.write_bytes(chunk)
        parts.append(p)
        entries.append({"name": p.name, "bytes": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    (out / "parts.json").write_text(json.dumps({"parts": entries, "bytes": len(data),
                                                "sha256": hashlib.sha256(data).hexdigest()}, indent=2) + "\n")
    return parts


def join(manifest, out) -> Path:
    data = joined_bytes(manifest)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


def joined_bytes(manifest) -> bytes:
    """The bytes split wrote, from parts.json and its parts, every hash checked."""
    manifest = Path(manifest)
    meta = json.loads(manifest.read_text())
    data = bytearray()
    for e in meta["parts"]:
        p = manifest.parent / e["name"]
        if not p.is_file():
            raise FileNotFoundError(f"part {p} named in {manifest} is missing")
        chunk = p.read_bytes()
        if len(chunk) != e["bytes"] or hashlib.sha256(chunk).hexdigest() != e["sha256"]:
            raise ValueError(f"part {p} does not match {manifest} (size or SHA-256): copy it again")
        data += chunk
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise ValueError(f"joined parts of {manifest} do not match its SHA-256")
    return bytes(data)


def reweight(manifest, pack_dir, repo=None, limit: int = CARRY_LIMIT, allow_older: bool = False) -> dict:
    """Replace a pack's weights with the joined parts of a device run (images untouched).

    Everything is checked before the pack changes: the parts' hashes, that they hold a checkpoint
    of the pack's config at an iteration no lower than the pack's (parts of an older call are
    refused unless allow_older), and that the pack plus the tracked files of `repo` still fit.
    The new manifest and weights are written beside the old ones and renamed into place; a failure
    leaves the old pack and no temporary file behind."""
    pack_dir = Path(pack_dir)
    meta_path = pack_dir / "manifest.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{pack_dir} is not a devicekit pack (no manifest.json)")
    meta = json.loads(meta_path.read_text())
    data = joined_bytes(manifest)
    blob = weights_blob(io.BytesIO(data))
    if blob["config"] != meta.get("config"):
        raise ValueError(f"parts hold config {blob['config']!r}, the pack {meta.get('config')!r}")
    iteration = int(blob.get("iteration", 0))
    if iteration < int(meta.get("iteration", 0)) and not allow_older:
        raise ValueError(f"parts are at iteration {iteration}, the pack at {meta['iteration']}: "
                         "parts of an earlier call? (allow_older to take them anyway)")
    weights = pack_dir / "weights.pt"
    new_bytes = folder_bytes(pack_dir) - (weights.stat().st_size if weights.exists() else 0) + len(data)
    meta.update(iteration=iteration, provenance=blob.get("provenance", ""), bytes=new_bytes,
                sha256=hashlib.sha256(data).hexdigest())
    if repo is not None:
        meta["tracked_bytes"] = tracked_bytes(Path(repo))
        total = new_bytes + meta["tracked_bytes"]
        if total > limit:
            raise ValueError(f"pack {pack_dir} ({new_bytes / 2**20:.1f} MiB) + tracked files "
                             f"({meta['tracked_bytes'] / 2**20:.1f} MiB) = {total / 2**20:.1f} MiB is over the "
                             f"device tool's {limit / 2**20:.0f} MiB")
    tmp_meta, tmp_weights = pack_dir / "manifest.json.tmp", pack_dir / "weights.pt.tmp"
    try:
        tmp_meta.write_text(json.dumps(meta, indent=2) + "\n")
        tmp_weights.write_bytes(data)
        tmp_weights.replace(weights)
        tmp_meta.replace(meta_path)
    finally:
        tmp_weights.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
    return meta


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mambast.devicekit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack", help="checkpoint + images -> a folder to carry to the device machine")
    a.add_argument("--checkpoint", required=True,
                   help="a mambast.train checkpoint, or an exported folder (e.g. ../models/default)")
    a.add_argument("--content", nargs="+", required=True)
    a.add_argument("--style", nargs="+", required=True)
    a.add_argument("--out", default="../artifacts/device-pack")
    a.add_argument("--short-side", type=int, default=512)
    a.add_argument("--quality", type=int, default=90)
    a.add_argument("--repo", default="..", help="repository whose tracked files travel too (size check)")
    s = sub.add_parser("split", help="checkpoint -> weights-only parts of <= 15 MiB + parts.json")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", required=True)
    j = sub.add_parser("join", help="parts.json + parts -> one weights.pt (hashes checked)")
    j.add_argument("--parts", required=True, help="the parts.json that split wrote")
    j.add_argument("--out", required=True)
    r = sub.add_parser("reweight", help="parts.json + parts -> a pack's weights.pt (images kept)")
    r.add_argument("--parts", required=True, help="the parts.json that split wrote")
    r.add_argument("--pack", default="../artifacts/device-pack")
    r.add_argument("--repo", default="..", help="repository whose tracked files travel too (size check)")
    r.add_argument("--allow-older", action="store_true", help="take parts at a lower iteration than the pack's")
    args = p.parse_args(argv)
    if args.cmd == "pack":
        m = pack(args.checkpoint, args.content, args.style, args.out, args.short_side, args.quality, args.repo)
        print(f"{args.out}: {m['images']['content']} content / {m['images']['style']} style images, "
              f"iteration {m['iteration']}, {m['bytes'] / 2**20:.1f} MiB "
              f"(+ {m['tracked_bytes'] / 2**20:.1f} MiB tracked = {(m['bytes'] + m['tracked_bytes']) / 2**20:.1f} "
              f"of {CARRY_LIMIT / 2**20:.0f} MiB)")
    elif args.cmd == "split":
        parts = split(args.checkpoint, args.out)
        print(f"{len(parts)} parts in {args.out}: {', '.join(p.name for p in parts)}")
    elif args.cmd == "reweight":
        m = reweight(args.parts, args.pack, args.repo, allow_older=args.allow_older)
        print(f"{args.pack}: weights at iteration {m['iteration']}, {m['bytes'] / 2**20:.1f} MiB")
    else:
        print(f"wrote {join(args.parts, args.out)}")


if __name__ == "__main__":
    main()
