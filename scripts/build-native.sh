#!/usr/bin/env bash
# Builds the fused SelectiveScan custom-op library (native/) against the ONNX Runtime headers of the
# restored NuGet package (Microsoft.ML.OnnxRuntime, version from Directory.Packages.props), into
# artifacts/native/, with the mambast_ort_run tool and the GoogleTest tests. CUDA parts only with
# MAMBAST_OPS_CUDA=ON and nvcc. Prints nothing on success.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$("$ROOT/scripts/ort-package.sh")"
cmake -S "$ROOT/native" -B "$ROOT/artifacts/native" -DCMAKE_BUILD_TYPE=Release -DMAMBAST_ORT_PACKAGE="$PKG" \
  -DMAMBAST_OPS_CUDA="${MAMBAST_OPS_CUDA:-OFF}" > /dev/null
cmake --build "$ROOT/artifacts/native" -j2 > /dev/null
