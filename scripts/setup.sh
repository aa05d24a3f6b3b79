#!/usr/bin/env bash
# Installs what this project needs on a fresh machine, only what is missing: apt packages,
# npm packages from the lockfile, .NET restore, the native fused-scan op library. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

APT_PACKAGES=(rabbitmq-server python3-torch libtorch-dev python3-dev ninja-build pybind11-dev libopenblas0-pthread python3-onnx python3-pytest python3-numpy python3-pil python3-yaml python3-jsonschema python3-pika libvips42 libvips-tools cmake g++ golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} > 0 )); then
  echo "setup: installing apt packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
  # Debian starts the packaged broker where an init system exists; the project runs its own.
  $SUDO service rabbitmq-server stop > /dev/null 2>&1 || true
fi

stamp=node_modules/.package-lock.stamp
if [[ ! -f "$stamp" ]] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

if [[ ! -f artifacts/.restored ]] || [[ -n "$(find . -name '*.csproj' -newer artifacts/.restored -not -path './node_modules/*' | head -1)" ]] \
   || [[ Directory.Packages.props -nt artifacts/.restored ]]; then
  echo "setup: dotnet restore"
  dotnet restore MambaSt.Batch.sln --verbosity quiet
  mkdir -p artifacts && touch artifacts/.restored
fi

# The fused-scan op library (native/), against the restored ONNX Runtime package's headers: the engine runs
# the bundled model's fused graphs with it (Inference__Scan=auto); src/Inference copies it next to every app.
if [[ ! -f artifacts/native/libmambast_ops.so ]] || [[ -n "$(find native scripts/build-native.sh Directory.Packages.props -newer artifacts/native/libmambast_ops.so -type f | head -1)" ]]; then
  echo "setup: building libmambast_ops.so (scripts/build-native.sh)"
  scripts/build-native.sh
fi
