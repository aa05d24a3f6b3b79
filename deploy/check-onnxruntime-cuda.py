#!/usr/bin/env python3
"""Fails unless every libonnxruntime.so under ROOT can run the CUDA execution provider.

Usage: check-onnxruntime-cuda.py ROOT [REPORT]. Run by the ort-check stage of deploy/worker.Dockerfile on the
gpu publish output; needs no GPU. For each libonnxruntime.so found it asks the library itself, through
OrtGetApiBase()->GetApi()->GetAvailableProviders (the call the worker makes before appending CUDA), whether it
was built with CUDAExecutionProvider, and checks that libonnxruntime_providers_cuda.so and
libonnxruntime_providers_shared.so sit beside it (ONNX Runtime loads them from that directory). A CPU build
of libonnxruntime.so also contains the string "CUDAExecutionProvider", so grepping the binary proves nothing.
Writes one line per library to REPORT when given.
"""
from __future__ import annotations

import ctypes
import sys
from pathlib import Path

ORT_API_VERSION = 20                # any version the library supports; the OrtApi table only grows
GET_AVAILABLE_PROVIDERS = 125       # index of GetAvailableProviders in struct OrtApi (onnxruntime_c_api.h)
RELEASE_AVAILABLE_PROVIDERS = 126
CUDA = "CUDAExecutionProvider"
BESIDE = ("libonnxruntime_providers_cuda.so", "libonnxruntime_providers_shared.so")


def providers(library: Path) -> tuple[str, list[str]]:
    lib = ctypes.CDLL(str(library))
    lib.OrtGetApiBase.restype = ctypes.c_void_p
    base = ctypes.cast(lib.OrtGetApiBase(), ctypes.POINTER(ctypes.c_void_p))
    get_api = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint32)(base[0])
    version = ctypes.CFUNCTYPE(ctypes.c_char_p)(base[1])().decode()
    api_ptr = get_api(ORT_API_VERSION)
    if not api_ptr:
        raise RuntimeError(f"{library}: ONNX Runtime {version} does not support API version {ORT_API_VERSION}")
    api = ctypes.cast(api_ptr, ctypes.POINTER(ctypes.c_void_p))
    names_t = ctypes.POINTER(ctypes.c_char_p)
    get = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.POINTER(names_t), ctypes.POINTER(ctypes.c_int))(
        api[GET_AVAILABLE_PROVIDERS])
    release = ctypes.CFUNCTYPE(ctypes.c_void_p, names_t, ctypes.c_int)(api[RELEASE_AVAILABLE_PROVIDERS])
    names, count = names_t(), ctypes.c_int()
    if get(ctypes.byref(names), ctypes.byref(count)):
        raise RuntimeError(f"{library}: GetAvailableProviders failed")
    try:
        return version, [names[i].decode() for i in range(count.value)]
    finally:
        release(names, count)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = Path(argv[1])
    libraries = sorted(root.rglob("libonnxruntime.so"))
    if not libraries:
        print(f"no libonnxruntime.so under {root}", file=sys.stderr)
        return 1
    lines, failed = [], False
    for library in libraries:
        version, available = providers(library)
        missing = [name for name in BESIDE if not (library.parent / name).is_file()]
        ok = CUDA in available and not missing
        failed |= not ok
        line = f"{library.relative_to(root)}: ONNX Runtime {version}, providers {', '.join(available)}"
        if CUDA not in available:
            line += f"; NOT BUILT WITH {CUDA} (a CPU build: the worker would refuse Inference:ExecutionProvider=Cuda)"
        if missing:
            line += f"; missing beside it: {', '.join(missing)}"
        lines.append(line)
        print(line, file=sys.stdout if ok else sys.stderr)
    if len(argv) == 3 and not failed:
        Path(argv[2]).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
