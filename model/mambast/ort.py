"""Run exported graphs with ONNX Runtime from Python, without the onnxruntime wheel.

Builds native/tools/mambast_ort_run.cpp (the same runner the fused-op tests use, without --ops) against the
libonnxruntime.so and C API headers of the restored NuGet package Microsoft.ML.OnnxRuntime, the same native library
the .NET engine runs (found by scripts/ort-package.sh through the .NET restore). Tests skip when unavailable.
Override the locations with MAMBAST_ORT_PACKAGE (the package folder), or MAMBAST_ORT_LIB (folder of
libonnxruntime.so) and MAMBAST_ORT_INCLUDE.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

MODEL_DIR = Path(__file__).resolve().parent.parent
REPO = MODEL_DIR.parent
_BIN = MODEL_DIR / ".build" / "ort_run"


def package_dir() -> Path | None:
    """Folder of the restored Microsoft.ML.OnnxRuntime NuGet package, or None when it cannot be found."""
    res = subprocess.run([str(REPO / "scripts" / "ort-package.sh")], capture_output=True, text=True)
    return Path(res.stdout.strip()) if res.returncode == 0 and res.stdout.strip() else None


def _paths():
    lib, inc = os.environ.get("MAMBAST_ORT_LIB"), os.environ.get("MAMBAST_ORT_INCLUDE")
    if lib is None or inc is None:
        pkg = package_dir() or Path("/nonexistent")
        lib = lib or pkg / "runtimes" / "linux-x64" / "native"
        inc = inc or pkg / "build" / "native" / "include"
    return Path(lib), Path(inc)


def runner() -> Path | None:
    """Path of the compiled runner, building it if needed; None if ORT or a compiler is missing."""
    lib, inc = _paths()
    src = REPO / "native" / "tools" / "mambast_ort_run.cpp"
    if _BIN.exists() and _BIN.stat().st_mtime >= src.stat().st_mtime:
        return _BIN
    cxx = shutil.which("g++") or shutil.which("c++")
    if not cxx or not (lib / "libonnxruntime.so").exists() or not (inc / "onnxruntime_cxx_api.h").exists():
        return None
    # the library's SONAME is libonnxruntime.so.1, which the package does not ship: link it here
    libdir = _BIN.parent / "lib"
    libdir.mkdir(parents=True, exist_ok=True)
    for name in ("libonnxruntime.so.1", "libonnxruntime.so"):
        link = libdir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(lib / "libonnxruntime.so")
    cmd = [cxx, "-O1", "-std=c++17", f"-I{inc}", str(src), "-o", str(_BIN), f"-L{libdir}", "-lonnxruntime",
           f"-Wl,-rpath,{libdir}"]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        return None
    return _BIN


def run(model_path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    exe = runner()
    if exe is None:
        raise RuntimeError("ONNX Runtime runner unavailable")
    with tempfile.TemporaryDirectory() as tmp:
        args = [str(exe), str(model_path), tmp]
        for name, arr in inputs.items():
            p = os.path.join(tmp, f"in_{name}.npy")
            np.save(p, np.ascontiguousarray(arr))
            args.append(f"{name}={p}")
        res = subprocess.run(args, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"ort_run failed: {res.stderr.strip()}")
        return {f[:-4]: np.load(os.path.join(tmp, f)) for f in os.listdir(tmp)
                if f.endswith(".npy") and not f.startswith("in_")}
