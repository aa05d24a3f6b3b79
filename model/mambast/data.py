"""Training images: decoding (PIL, scripts only), in-memory pools and seeded augmentation.

Pools hold uint8 CHW tensors pre-resized to a short side of `keep_side`. `ImagePool.sample` draws
a batch of random-scale crops (short side resized to [crop, max_scale * crop]), random horizontal
flips and, for content, colour jitter. All randomness comes from a torch.Generator that the
trainer checkpoints, so a resumed run draws the same batches as an uninterrupted one.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def list_images(paths) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"image path not found: {p}")
    return files


def read_image(path, max_side: int | None = None) -> torch.Tensor:
    """-> float32 [3, H, W] in [0, 1]. Needs PIL (python3-pil, which scripts/setup.sh installs)."""
    from PIL import Image
    with Image.open(path) as im:
        im = im.convert("RGB")
        if max_side and min(im.size) > max_side:
            s = max_side / min(im.size)
            im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))), Image.BICUBIC)
        data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        return data.reshape(im.size[1], im.size[0], 3).permute(2, 0, 1).float() / 255.0


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)


class ImagePool:
    def __init__(self, images: list[torch.Tensor], names: list[str] | None = None):
        if not images:
            raise ValueError("image pool is empty")
        self.images = [to_uint8(i) if i.dtype != torch.uint8 else i for i in images]
        self.names = names or [f"img{i}" for i in range(len(images))]

    @classmethod
    def from_paths(cls, paths, keep_side: int = 256, cache=None) -> "ImagePool":
        files = list_images(paths)
        names = [str(f) for f in files]
        cached = None
        if cache:
            import hashlib
            ident = "\n".join(f"{f.resolve()}\t{f.stat().st_size}\t{f.stat().st_mtime_ns}" for f in files)
            digest = hashlib.sha256(f"{keep_side}\n{ident}".encode()).hexdigest()[:16]
            cached = Path(cache) / f"pool-{digest}.pt"
            if cached.exists():
                return cls(torch.load(cached), names)
        pool = cls([to_uint8(read_image(f, keep_side)) for f in files], names)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")  # runs started together must not share it
            torch.save(pool.images, tmp)
            os.replace(tmp, cached)
        return pool

    def __len__(self):
        return len(self.images)

    def sample(self, n: int, crop: int, g: torch.Generator, max_scale: float = 2.5,
               jitter: float = 0.0) -> torch.Tensor:
        out = []
        for _ in range(n):
            img = self.images[int(torch.randint(len(self.images), (1,), generator=g))].float() / 255.0
            h, w = img.shape[1:]
            short = crop * (1.0 + (max_scale - 1.0) * float(torch.rand(1, generator=g)))
            s = short / min(h, w)
            nh, nw = max(crop, round(h * s)), max(crop, round(w * s))
            img = F.interpolate(img[None], size=(nh, nw), mode="bilinear", align_corners=False,
                                antialias=s < 1)[0]
            y = int(torch.randint(nh - crop + 1, (1,), generator=g))
            x = int(torch.randint(nw - crop + 1, (1,), generator=g))
            img = img[:, y:y + crop, x:x + crop]
            if float(torch.rand(1, generator=g)) < 0.5:
                img = img.flip(-1)
            if jitter > 0:
                img = colour_jitter(img, jitter, g)
            out.append(img.clamp(0, 1))
        return torch.stack(out)


def colour_jitter(img, amount: float, g: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation and per-channel gain, each +-amount."""
    r = (torch.rand(6, generator=g) * 2 - 1) * amount
    img = img * (1 + r[0])
    mean = img.mean()
    img = (img - mean) * (1 + r[1]) + mean
    grey = img.mean(0, keepdim=True)
    img = (img - grey) * (1 + r[2]) + grey
    img = img * (1 + 0.5 * r[3:6]).reshape(3, 1, 1)
    return img.clamp(0, 1)


def write_png(path, img: torch.Tensor) -> None:
    """float [3, H, W] in [0, 1] (or uint8) -> 8-bit RGB PNG, written with zlib (no PIL/torchvision)."""
    import struct
    import zlib
    a = to_uint8(img) if img.dtype != torch.uint8 else img
    c, h, w = a.shape
    rows = a.permute(1, 2, 0).contiguous().numpy()
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(png)


def grid(images: list[torch.Tensor], ncol: int, pad: int = 2) -> torch.Tensor:
    """List of [3, H, W] (same size) -> one [3, H', W'] grid image on white."""
    h, w = images[0].shape[1:]
    nrow = (len(images) + ncol - 1) // ncol
    out = torch.ones(3, nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for i, im in enumerate(images):
        r, c = divmod(i, ncol)
        out[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = im.clamp(0, 1)
    return out
