#!/usr/bin/env bash
# Prints the folder of the restored ONNX Runtime NuGet package (headers in build/native/include, the native
# library in runtimes/linux-x64/native), restoring src/Inference first if needed. The packages folder comes
# from the restore's own record (obj/project.assets.json), else from `dotnet nuget locals`; never a fixed path.
#   MAMBAST_ORT_PACKAGE  use this folder instead
#   ORT_PACKAGE_ID       default microsoft.ml.onnxruntime (e.g. microsoft.ml.onnxruntime.gpu.linux)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${MAMBAST_ORT_PACKAGE:-}" ]]; then echo "$MAMBAST_ORT_PACKAGE"; exit 0; fi
id="${ORT_PACKAGE_ID:-microsoft.ml.onnxruntime}"
version="$(sed -n 's:.*<OnnxRuntimeVersion>\(.*\)</OnnxRuntimeVersion>.*:\1:p' "$ROOT/Directory.Packages.props")"
assets="$ROOT/src/Inference/obj/project.assets.json"
if [[ ! -f "$assets" ]]; then
  dotnet restore "$ROOT/src/Inference/MambaSt.Batch.Inference.csproj" --verbosity quiet >&2
fi
folders="$(/usr/bin/python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["packageFolders"]))' "$assets" 2>/dev/null || true)"
folders+=$'\n'"$(dotnet nuget locals global-packages -l | sed -n 's/^global-packages: //p')"
while IFS= read -r dir; do
  [[ -n "$dir" && -d "${dir%/}/$id/$version" ]] && { echo "${dir%/}/$id/$version"; exit 0; }
done <<< "$folders"
echo "ort-package: $id $version not found in the NuGet packages folders ($(echo $folders)); run dotnet restore" >&2
exit 1
