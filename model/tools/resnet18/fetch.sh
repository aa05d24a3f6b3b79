#!/usr/bin/env bash
# Restores Microsoft.ML.DnnImageFeaturizer.ResNet18 0.24.0 (MIT; ImageNet ResNet-18 exported from CNTK)
# into the NuGet cache with a restore-only project that no product project references, and prints the
# path of ResNet18.onnx, which mambast.resnet.default_path() finds there (training: --perceptual resnet18).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export MSBUILDDISABLENODEREUSE=1
dotnet restore "$here/ResNet18Weights.csproj" --nologo -v q >&2
root="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
onnx="$root/microsoft.ml.dnnimagefeaturizer.resnet18/0.24.0/tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx"
[[ -f "$onnx" ]] || { echo "fetch.sh: $onnx missing after restore" >&2; exit 1; }
echo "$onnx"
