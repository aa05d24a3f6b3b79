#!/usr/bin/env bash
# `make demo`: stylizes sample photos with the bundled default model, in process (MassTransit's
# in-memory transport, local folders, ONNX Runtime on the CPU): no servers.
#
# Sample images come from Debian packages, downloaded (not installed) and unpacked under artifacts/demo:
#   content: scikit-image's sample photos (python3-skimage): astronaut.png (NASA, public domain),
#            chelsea.png (CC0, Stefan van der Walt), coffee.png (CC0, Rachel Michetti),
#            rocket.jpg (SpaceX, public domain)
#   style:   GNOME's "Adwaita" wallpaper (gnome-backgrounds: adwaita-l.webp,
#            (c) 2011 Jakub Steiner, CC BY-SA 3.0)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# no usage telemetry from ONNX Runtime (queued under ~/.cache otherwise) or MassTransit
export ORT_DISABLE_TELEMETRY=1 MASSTRANSIT_USAGE_TELEMETRY=false
DEMO="$ROOT/artifacts/demo"
OUT="${MAMBAST_DEMO_OUT:-$ROOT/demo-output}"
mkdir -p "$DEMO/debs" "$DEMO/input" "$DEMO/style"

if [[ ! -f models/default/stylizer.onnx || ! -f models/default/style_encoder.onnx ]]; then
  echo "demo: the bundled model (models/default) is missing; nothing to run. See docs/model-card or issue 'Train the bundled default'." >&2
  exit 1
fi

source "$ROOT/scripts/debs.sh"

if [[ -z "$(ls -A "$DEMO/input")" ]]; then
  echo "demo: fetching sample photos and artwork from Debian packages (python3-skimage, gnome-backgrounds)"
  sk="$(fetch_deb "$DEMO/debs" python3-skimage)/usr/lib/python3/dist-packages/skimage/data"
  cp "$sk/astronaut.png" "$sk/chelsea.png" "$sk/coffee.png" "$sk/rocket.jpg" "$DEMO/input/"
  gb="$(fetch_deb "$DEMO/debs" gnome-backgrounds)/usr/share/backgrounds/gnome"
  cp "$gb/adwaita-l.webp" "$DEMO/style/"
fi

echo "demo: building the CLI"
dotnet build src/Submitter/MambaSt.Batch.Submitter.csproj -c Release --nologo --verbosity quiet
CLI="$ROOT/src/Submitter/bin/Release/net10.0/mambast.dll"

echo "demo: mambast stylize $DEMO/input --style $DEMO/style/adwaita-l.webp --out $OUT --max-side 512"
dotnet "$CLI" stylize "$DEMO/input" --style "$DEMO/style/adwaita-l.webp" --out "$OUT" --max-side 512 --format jpeg --report "$OUT/report.html"
echo
echo "demo: outputs are in $OUT"
ls -la "$OUT"
echo "demo: report (open it in a browser): $OUT/report.html"
