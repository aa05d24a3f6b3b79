#!/usr/bin/env bash
# Builds the fused SelectiveScan custom-op library (native/) against the ONNX Runtime headers in
# node_modules, into artifacts/native/. CUDA parts only when nvcc is found.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmake -S "$ROOT/native" -B "$ROOT/artifacts/native" -DCMAKE_BUILD_TYPE=Release -DMAMBAST_OPS_CUDA="${MAMBAST_OPS_CUDA:-OFF}" > /dev/null
cmake --build "$ROOT/artifacts/native" -j2 > /dev/null
