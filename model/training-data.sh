#!/usr/bin/env bash
# Builds the training and held-out evaluation image folders of the bundled model from Debian packages
# (downloaded with apt-get download, unpacked, never installed) plus the project's sample images
# (../shared/data/images, not redistributed). Nothing here is committed: everything lands under
# artifacts/training-data/ as symbolic links into the unpacked packages.
#
#   model/training-data.sh [SHARED_IMAGES]      # default: ../shared/data/images beside the repository
#
# First (since session 7, the current training set): the seeded split of the shared training set
# ../shared/data/train (or $MAMBAST_TRAIN_SET; 496 photos, 209 artworks, MANIFEST.tsv), by
# `python -m mambast.split` (rule: docs/evaluation.md, "Held-out split"), into
# artifacts/training-data/split/{train,heldout}-{content,style}/ and split/pairs.tsv (the 40 held-out
# evaluation pairs). Then the older sets of models 0.1.0-0.5.0, kept so their evaluations can be rerun.
#
# Folders written for 0.1.0-0.5.0 (each a flat folder of links):
#   train-content   SHARED/content (10 photos) + mate-backgrounds nature/ (12 photos, GPL-2+)
#   train-style     SHARED/style (20 artworks) + gnome-backgrounds *.webp (16, CC-BY-SA 3.0)
#                   + desktop-base GRUB backgrounds of emerald, joy, softwaves, spacefun (16x9), lines (4x3)
#                   (GPL-2+/GPL-2) + mate-backgrounds abstract/ (6 of 7, GPL-2+; one size of Elephants)
#                   + ukui-wallpapers (9 of 12, CC-BY-SA 3.0)
#   heldout-content python3-skimage sample photos astronaut, chelsea, coffee, rocket, motorcycle_left
#                   (public domain / CC0), never used for training
#   heldout-style   never used for training: desktop-base GRUB backgrounds of futureprototype, homeworld,
#                   moonlight (16x9; joy-inksplat's is a link to joy's, a training image), mate-backgrounds
#                   abstract/Flow.png, ukui-wallpapers city.png, goldfish.png, the-mouse.jpg
# Licences: each package's /usr/share/doc/<package>/copyright under artifacts/training-data/debs/<package>.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${1:-$ROOT/../shared/data/images}"
DATA="$ROOT/artifacts/training-data"
DEBS="$DATA/debs"
mkdir -p "$DEBS"

TRAIN_SET="${MAMBAST_TRAIN_SET:-$ROOT/../shared/data/train}"
(cd "$ROOT/model" && /usr/bin/python3 -m mambast.split --data "$TRAIN_SET" --out "$DATA/split")

source "$ROOT/scripts/debs.sh"

link_into() { # folder files...
  local dir="$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do
    [[ -f "$f" ]] || { echo "training-data: missing $f" >&2; exit 1; }
    local real; real="$(realpath "$f")"
    ln -sfn "$real" "$dir/$(echo "$real" | awk -F/ '{print $(NF-2) "-" $(NF-1) "-" $NF}')"
  done
}

[[ -d "$SHARED/content" && -d "$SHARED/style" ]] || { echo "training-data: $SHARED/{content,style} not found" >&2; exit 1; }
gnome="$(fetch_deb "$DEBS" gnome-backgrounds)/usr/share/backgrounds/gnome"
desk="$(fetch_deb "$DEBS" desktop-base)/usr/share/desktop-base"
mate="$(fetch_deb "$DEBS" mate-backgrounds)/usr/share/backgrounds/mate"
ukui="$(fetch_deb "$DEBS" ukui-wallpapers)/usr/share/backgrounds"
skim="$(fetch_deb "$DEBS" python3-skimage)/usr/lib/python3/dist-packages/skimage/data"

rm -rf "$DATA/train-content" "$DATA/train-style" "$DATA/heldout-content" "$DATA/heldout-style"
shopt -s nullglob
link_into "$DATA/train-content" "$SHARED"/content/* "$mate"/nature/*.jpg
link_into "$DATA/train-style" "$SHARED"/style/* "$gnome"/*.webp \
  "$desk"/{emerald,joy,softwaves,spacefun}-theme/grub/grub-16x9.png "$desk"/lines-theme/grub/grub-4x3.png \
  "$mate"/abstract/{Arc-Colors-Transparent-Wallpaper.png,Elephants.jpg,Gulp.png,Silk.png,Spring.png,Waves.png} \
  "$ukui"/{2004default.jpg,calla.png,desert.png,firstgeneration.jpg,fluent-color.png,focal-ubuntukylin.png,rhythm.jpg,rollpaper.png,string.jpg}
link_into "$DATA/heldout-content" "$skim"/{astronaut.png,chelsea.png,coffee.png,rocket.jpg,motorcycle_left.png}
link_into "$DATA/heldout-style" "$desk"/{futureprototype,homeworld,moonlight}-theme/grub/grub-16x9.png \
  "$mate"/abstract/Flow.png "$ukui"/{city.png,goldfish.png,the-mouse.jpg}
for d in train-content train-style heldout-content heldout-style; do
  echo "$DATA/$d: $(ls "$DATA/$d" | wc -l) images"
done
