"""Train Mamba-ST with the authors' recipe (MAMBA-ST.md), resumably, on CPU or CUDA.

    cd model && OMP_NUM_THREADS=1 python -m mambast.train --config small --crop 64 --batch 4 \
        --content /work/shared/data/images/content --style /work/shared/data/images/style \
        --out ../artifacts/train/small --threads 1
    ... add --resume to continue from OUT/last.pt (same flags; --iters is the total target)

Each iteration runs one batched forward pass of the model on [(c, s), (c, c), (s, s)], features of
the outputs and of c, s under the perceptual VGG (`--vgg vgg_normalised.pth`, else a seeded random
VGG-19), and the loss 7 content + 10 style + 70 identity1 + 1 identity2; Adam, lr 1e-4.
OUT gets last.pt (model + optimiser + RNG states; `python -m mambast.export --checkpoint OUT/last.pt`
reads it), log.jsonl (one line per iteration) and samples/iter_N.png (content | style | output).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import time
from pathlib import Path

import torch

from .checkpoint import load_file
from .config import get_config
from .data import ImagePool, grid, write_png
from .losses import CONTENT_LAYERS, LAYERS, WEIGHTS, content_loss, scale_matched_content_layers, identity_losses, style_loss, total_loss
from .model import build_model
from .vgg import perceptual_vgg

PERCEPTUAL = ("vgg", "resnet18", "resnet18-swag")


def loss_network(name: str, vgg_path=None, vgg_seed: int = 0, resnet_path=None, blur: bool = True):
    """The perceptual network of the losses: `vgg` (vgg_normalised.pth or the seeded random VGG-19),
    `resnet18` / `resnet18-swag` (ImageNet ResNet-18, mambast/resnet.py)."""
    if name == "vgg":
        return perceptual_vgg(vgg_path, vgg_seed)
    if name in ("resnet18", "resnet18-swag"):
        from .resnet import resnet18
        return resnet18(resnet_path, blur=blur)
    raise ValueError(f"unknown perceptual network {name!r} (one of {', '.join(PERCEPTUAL)})")


def tv_loss(img):
    """Mean absolute difference of neighbouring pixels (anisotropic total variation)."""
    return (img[..., 1:, :] - img[..., :-1, :]).abs().mean() + (img[..., :, 1:] - img[..., :, :-1]).abs().mean()


class LrSchedule:
    """Learning rate per iteration: constant `lr` before `start`; from `start`, a linear warm-up over
    `warmup` iterations from lr/10 to `lr`, then a cosine decay to `final` at iteration `end`.
    `final` = `lr` (the default) keeps it constant (the authors' recipe: Adam, lr 1e-4)."""

    def __init__(self, lr: float, final: float | None = None, start: int = 0, warmup: int = 0, end: int = 0):
        self.lr, self.final, self.start, self.warmup, self.end = lr, lr if final is None else final, start, warmup, end
        if self.lr <= 0 or self.final <= 0:
            raise ValueError(f"learning rates must be positive, got --lr {lr} --lr-final {final}")
        if self.final != self.lr and self.end <= self.start + self.warmup:
            raise ValueError(f"--iters {end} must be past --schedule-start {start} + --warmup {warmup} to decay")

    def __call__(self, iteration: int) -> float:
        i = iteration - self.start
        if i < 0:
            return self.lr
        if i < self.warmup:
            return self.lr * (0.1 + 0.9 * i / self.warmup)
        if self.final == self.lr:
            return self.lr
        t = min(1.0, (i - self.warmup) / (self.end - self.start - self.warmup))
        return self.final + 0.5 * (self.lr - self.final) * (1 + math.cos(math.pi * t))


class Trainer:
    def __init__(self, config: str = "small", content: ImagePool | None = None, style: ImagePool | None = None,
                 crop: int = 64, batch: int = 4, lr: float = 1e-4, device: str = "cpu", seed: int = 0,
                 scan: str = "sequential", vgg_path=None, vgg_seed: int = 0, jitter: float = 0.15,
                 max_scale: float = 2.5, data_note: str = "", schedule: LrSchedule | None = None,
                 content_layers: tuple[str, ...] = CONTENT_LAYERS, recompute_scan: bool | None = None,
                 perceptual: str = "vgg", resnet_path=None, blur: bool = True, tv: float = 0.0):
        if crop % 8 or crop < 16:
            raise ValueError(f"--crop must be a multiple of 8 and >= 16, got {crop}")
        unknown = [x for x in content_layers if x not in LAYERS]
        if unknown or not content_layers:
            raise ValueError(f"--content-layers must name some of {', '.join(LAYERS)}, got {list(content_layers)}")
        self.content_layers = tuple(content_layers)
        self.device = torch.device(device)
        if self.device.type == "cuda":
            # process-wide settings (a Trainer on CUDA is the only thing in its process):
            # TF32 tensor cores for the projections and VGG convolutions (10-bit mantissa products,
            # float32 sums); fixed crop and batch, so cuDNN may pick its fastest algorithms once
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.cfg = get_config(config)
        self.model = build_model(self.cfg, seed=seed, scan_variant=scan).to(self.device).train()
        # default: recompute the scan in the backward pass on CUDA (memory), not on CPU (time), nor
        # for the kernel scan (it keeps only its inputs and every 16th/64th state anyway)
        self.model.scan.recompute = (self.device.type == "cuda" and scan != "kernel") if recompute_scan is None \
            else recompute_scan
        if perceptual != "vgg" and crop < 64:  # ResNet's stage 4 is at 1/32: 1x1 below 64, no std
            raise ValueError(f"--perceptual {perceptual} needs --crop >= 64 (its last tap is at 1/32 scale), got {crop}")
        self.perceptual = perceptual
        self.vgg = loss_network(perceptual, vgg_path, vgg_seed, resnet_path, blur).to(self.device)
        self.swag = perceptual == "resnet18-swag"
        self.tv = tv
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.schedule = schedule or LrSchedule(lr)
        self.skipped = 0
        self.seed = seed
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.content, self.style = content, style
        self.crop, self.batch, self.jitter, self.max_scale = crop, batch, jitter, max_scale
        self.iteration = 0
        self.train_seconds = 0.0
        self.devices = {"CUDA" if self.device.type == "cuda" else "CPU"}
        self.data_note = data_note
        self.settings = dict(config=config, crop=crop, batch=batch, lr=lr, seed=seed, scan=scan,
                             vgg=self.vgg.description, jitter=jitter, max_scale=max_scale,
                             content_layers=list(self.content_layers), perceptual=perceptual, tv=tv,
                             schedule=dict(vars(self.schedule)))

    def next_batch(self):
        c = self.content.sample(self.batch, self.crop, self.gen, self.max_scale, self.jitter)
        s = self.style.sample(self.batch, self.crop, self.gen, self.max_scale, 0.0)
        return c.to(self.device), s.to(self.device)

    def losses(self, c, s, seeds):
        b = c.shape[0]
        out = self.model(torch.cat([c, c, s]), torch.cat([s, c, s]), seed=seeds)
        ics, icc, iss = out.split(b)
        feats = self.vgg(out)
        with torch.no_grad():
            tf = self.vgg(torch.cat([c, s]))
        f_cs = [f[:b] for f in feats]
        f_cc = [f[b:2 * b] for f in feats]
        f_ss = [f[2 * b:] for f in feats]
        f_c = [f[:b] for f in tf]
        f_s = [f[b:] for f in tf]
        parts = {"content": content_loss(f_cs, f_c, self.content_layers), "style": style_loss(f_cs, f_s)}
        if self.swag:  # style statistics of the softmax-smoothed taps too (Wang et al. 2021)
            from .resnet import swag
            parts["style"] = parts["style"] + style_loss([swag(f) for f in f_cs], [swag(f) for f in f_s])
        parts["identity1"], parts["identity2"] = identity_losses(icc, iss, c, s, f_cc, f_ss, f_c, f_s)
        parts["total"] = total_loss(parts)
        if self.tv:
            parts["tv"] = tv_loss(ics)
            parts["total"] = parts["total"] + self.tv * parts["tv"]
        return parts, ics

    def step(self):
        t0 = time.time()
        c, s = self.next_batch()
        seeds = [int(x) for x in torch.randint(0, 2 ** 62, (3 * c.shape[0],), generator=self.gen)]
        parts, out = self.losses(c, s, seeds)
        lr = self.schedule(self.iteration)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        if torch.isfinite(parts["total"]):
            parts["total"].backward()
            self.opt.step()
            self.skipped = 0
        else:  # never let one bad batch poison the weights or the Adam moments
            self.skipped += 1
            if self.skipped >= 10:
                raise FloatingPointError(f"loss not finite for 10 iterations in a row (iteration {self.iteration})")
        self.iteration += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # the step's kernels are queued, not yet run
        dt = time.time() - t0
        self.train_seconds += dt
        rec = {k: float(v.detach()) for k, v in parts.items()}
        rec.update(iteration=self.iteration, seconds=round(dt, 3), lr=lr)
        if self.device.type == "cuda":
            rec["gpu_peak_gib"] = round(torch.cuda.max_memory_allocated(self.device) / 2 ** 30, 2)
        self.last = (c, s, out.detach())
        return rec

    def provenance(self) -> str:
        dev = "+".join(sorted(self.devices))
        vgg = {"resnet18": "ImageNet-ResNet-18", "resnet18-swag": "ImageNet-ResNet-18+SWAG"}.get(self.perceptual) or \
            ("random-VGG" if self.vgg.description.startswith("random") else "vgg_normalised")
        if self.tv:
            vgg += f"+TV {self.tv:g}"
        layers = "" if self.content_layers == CONTENT_LAYERS else f" (content at {'+'.join(self.content_layers)})"
        return (f"trained: {self.iteration} iterations, {dev}, {vgg} losses{layers}, crop {self.crop}, batch {self.batch}"
                + (f", data: {self.data_note}" if self.data_note else ""))

    def state(self) -> dict:
        return {"config": self.cfg.name, "provenance": self.provenance(), "state_dict": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "iteration": self.iteration, "gen_state": self.gen.get_state(),
                "torch_rng": torch.get_rng_state(), "train_seconds": self.train_seconds, "settings": self.settings,
                "devices": sorted(self.devices)}

    def save(self, path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, path)

    def init_weights(self, path) -> dict:
        """Start from a checkpoint's weights and iteration count with fresh Adam moments and data
        order (a devicekit weights.pt has no optimiser state). Returns the loaded checkpoint."""
        blob = load_file(path)
        if blob.get("config") != self.cfg.name:
            raise ValueError(f"checkpoint {path} is config {blob.get('config')!r}, not {self.cfg.name!r}")
        self.model.load_state_dict(blob["state_dict"], strict=True)
        self.iteration = int(blob.get("iteration", 0))
        self.train_seconds = float(blob.get("train_seconds", 0.0))
        self.devices |= _devices(blob)
        # new data order for each start point: a run re-started from the same pack on a fresh machine
        # must not replay the crops of the first run
        self.gen.manual_seed((self.seed + 1) * 1_000_003 + self.iteration)
        return blob

    def load(self, path) -> None:
        """Resume exactly: weights, Adam moments, data order and RNG of a train.py last.pt."""
        blob = self.init_weights(path)
        self.opt.load_state_dict(blob["optimizer"])
        self.gen.set_state(blob["gen_state"])
        torch.set_rng_state(blob["torch_rng"])


def _devices(blob) -> set[str]:
    """Where a checkpoint was trained so far (older checkpoints: read from the provenance text)."""
    if "devices" in blob:
        return set(blob["devices"])
    m = re.search(r", ((?:CPU|CUDA)(?:\+(?:CPU|CUDA))*),", blob.get("provenance", ""))
    return set(m.group(1).split("+")) if m else set()


def default_cpu_scan() -> str:
    """`kernel` (1.4x faster steps, docs/benchmarks/training.md) when it builds here, else `sequential`."""
    from .scan_kernel import extension
    try:
        extension()
        return "kernel"
    except Exception as e:  # RuntimeError from the build, ImportError from a mismatched libtorch
        print(f"scan kernel unavailable, training with the sequential scan: {e}", flush=True)
        return "sequential"


def _cuda_self_check_subprocess() -> str:
    """Build and check the CUDA kernel in a child process: an illegal memory access would poison
    this process's CUDA context for good, so the trainer only loads a kernel that passed there
    (the build is cached in model/.build, so loading it here afterwards is quick)."""
    import subprocess
    import sys
    code = ("import sys\nfrom mambast.scan_kernel import cuda_self_check\nr = cuda_self_check()\n"
            "print(r or 'ok')\nsys.exit(0 if not r else 3)")
    try:
        res = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                             capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return "the build and check took over 15 minutes"
    if res.returncode == 0:
        return ""
    out = (res.stdout + res.stderr).strip().splitlines()
    return " / ".join(out[-3:]) or f"exit status {res.returncode}"


def checked_cuda_scan() -> str:
    """`kernel` on CUDA only when it builds and matches the float64 loop here; else `parallel`."""
    try:
        problem = _cuda_self_check_subprocess()
    except Exception as e:  # never lose the GPU time over the check itself
        problem = f"{type(e).__name__}: {e}"
    if problem:
        print(f"CUDA scan kernel rejected ({problem}); training with the parallel scan", flush=True)
        return "parallel"
    print("CUDA scan kernel: built and matches the float64 loop", flush=True)
    return "kernel"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mambast.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="small", choices=("base", "small", "tiny"))
    p.add_argument("--content", nargs="+", required=True, help="content image files or folders")
    p.add_argument("--style", nargs="+", required=True, help="style image files or folders")
    p.add_argument("--out", required=True, help="folder for last.pt, log.jsonl, samples/")
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--iters", type=int, default=160000, help="total iterations (including resumed ones)")
    p.add_argument("--max-minutes", type=float, default=0,
                   help="stop after this many minutes from the start of the command (0: no limit)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (also applied on --resume)")
    p.add_argument("--lr-final", type=float, default=None, help="cosine-decay the lr to this at --iters")
    p.add_argument("--schedule-start", type=int, default=0, help="iteration where warm-up and decay start")
    p.add_argument("--warmup", type=int, default=0, help="linear warm-up from lr/10 over this many iterations")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--scan", default=None, choices=("kernel", "sequential", "parallel"),
                   help="default: kernel on CPU (the C++ scan; sequential if it cannot be built), parallel on CUDA "
                        "(--scan kernel on CUDA: checked against the float64 loop first, parallel if it fails)")
    p.add_argument("--vgg", default=None, help="vgg_normalised.pth; default: seeded random VGG-19")
    p.add_argument("--vgg-seed", type=int, default=0)
    p.add_argument("--perceptual", default="vgg", choices=PERCEPTUAL,
                   help="loss network: vgg (--vgg or the random VGG-19), resnet18 (ImageNet, model/tools/resnet18/"
                        "fetch.sh), resnet18-swag (plus style statistics of softmax-smoothed taps)")
    p.add_argument("--resnet18", default=None, help="ResNet18.onnx (default: the NuGet cache, $MAMBAST_RESNET18)")
    p.add_argument("--no-blur", action="store_true", help="ResNet-18 without the blur before its stride-2 layers")
    p.add_argument("--tv", type=float, default=0.0, help="weight of a total-variation term on the stylized output")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep-side", type=int, default=256, help="images are held at this short side")
    p.add_argument("--pool-cache", default=None, metavar="DIR",
                   help="keep the decoded, resized images here (keyed by file list, sizes and --keep-side) so a "
                        "restart skips decoding them")
    p.add_argument("--max-scale", type=float, default=2.5)
    p.add_argument("--jitter", type=float, default=0.15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ckpt-minutes", type=float, default=3.0)
    p.add_argument("--ckpt-iters", type=int, default=50)
    p.add_argument("--sample-iters", type=int, default=25)
    p.add_argument("--keep-iters", type=int, default=0,
                   help="also keep the weights (no optimiser state) as OUT/iter_N.pt every N iterations, so runs "
                        "that advance at different speeds can be compared at the same iteration")
    p.add_argument("--data-note", default="")
    p.add_argument("--content-layers", nargs="+", default=list(CONTENT_LAYERS), metavar="LAYER",
                   help="VGG layers of the content loss (authors: relu4_1 relu5_1, for 256 crops); "
                        "'scale-matched' picks the pair with the same feature-map sizes at --crop")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--recompute-scan", choices=("auto", "on", "off"), default="auto",
                   help="activation checkpointing of the selective scan (auto: on for CUDA except with "
                        "--scan kernel, off for CPU)")
    p.add_argument("--init", default=None, metavar="CKPT",
                   help="when OUT/last.pt is absent (or without --resume): start from CKPT's weights and "
                        "iteration count with a fresh optimiser (e.g. a devicekit weights.pt)")
    a = p.parse_args(argv)
    start = time.time()  # --max-minutes counts from here: data loading and kernel builds included
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    content = ImagePool.from_paths(a.content, a.keep_side, a.pool_cache)
    style = ImagePool.from_paths(a.style, a.keep_side, a.pool_cache)
    print(f"content images: {len(content)}, style images: {len(style)}", flush=True)
    scan = a.scan or ("parallel" if a.device == "cuda" else default_cpu_scan())
    if scan == "kernel" and a.device == "cuda":
        scan = checked_cuda_scan()
    layers = (scale_matched_content_layers(a.crop) if a.content_layers == ["scale-matched"]
              else tuple(a.content_layers))
    schedule = LrSchedule(a.lr, a.lr_final, a.schedule_start, a.warmup, a.iters)
    tr = Trainer(a.config, content, style, a.crop, a.batch, a.lr, a.device, a.seed, scan, a.vgg, a.vgg_seed,
                 a.jitter, a.max_scale, a.data_note or f"{len(content)} content / {len(style)} style images",
                 schedule, layers, {"auto": None, "on": True, "off": False}[a.recompute_scan],
                 a.perceptual, a.resnet18, not a.no_blur, a.tv)
    last = out / "last.pt"
    if a.resume and last.exists():
        tr.load(last)
        print(f"resumed at iteration {tr.iteration}", flush=True)
    elif a.init:
        tr.init_weights(a.init)
        print(f"initialised from {a.init} at iteration {tr.iteration} (fresh optimiser)", flush=True)
    last_ckpt = time.time()
    with open(out / "log.jsonl", "a") as log:
        while tr.iteration < a.iters:
            rec = tr.step()
            rec["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()), flush=True)
            if a.keep_iters and tr.iteration % a.keep_iters == 0:
                torch.save({k: v for k, v in tr.state().items() if k not in ("optimizer",)},
                           out / f"iter_{tr.iteration:06d}.pt")
            if tr.iteration % a.sample_iters == 0 or tr.iteration == 1:
                c, s, o = tr.last
                k = min(4, c.shape[0])
                write_png(out / "samples" / f"iter_{tr.iteration:06d}.png",
                          grid([x.cpu() for trip in zip(c[:k], s[:k], o[:k]) for x in trip], ncol=3))
            done = a.max_minutes and (time.time() - start) > a.max_minutes * 60
            if tr.iteration % a.ckpt_iters == 0 or time.time() - last_ckpt > a.ckpt_minutes * 60 or done:
                tr.save(last)
                last_ckpt = time.time()
            if done:
                break
    tr.save(last)
    print(f"saved {last} at iteration {tr.iteration}", flush=True)


if __name__ == "__main__":
    main()
