#!/usr/bin/env bash
# Train on the lent GPU machine (the `device` tool), from a devicekit pack, and write the result to
# $OUT in pieces the tool can bring back (<= 8 files of <= 16 MiB).
#
# Here, first (see model/README.md, "Training on the lent GPU machine"):
#   cd model && /usr/bin/python3 -m mambast.devicekit pack --checkpoint ../artifacts/train/X/last.pt \
#       --content ../artifacts/training-data/train-content --style ../artifacts/training-data/train-style
# Then, with the device tool, carrying artifacts/device-pack:
#   bash model/device-train.sh --minutes 9 [more mambast.train flags, e.g. --lr 1e-4]
#   (--minutes is the whole call's budget: training stops a minute before it to split and copy back)
# Back here: python -m mambast.devicekit join --parts <files_at>/parts.json --out ../artifacts/train/gpu/weights.pt
#
# Between calls, at once: python -m mambast.devicekit reweight --parts <files_at>/parts.json (the pack
# then holds this call's weights; the machine goes back 30 s after a call and a fresh one starts from
# the pack). A machine still warm resumes /tmp/mambast-run/last.pt (Adam moments included) when the
# pack holds the weights it started from or the weights it last returned (what reweight puts there).
# It asks for --scan kernel: mambast.train builds the CUDA kernel and checks it against the float64 loop
# in a child process first, and trains with the parallel scan (recomputed in the backward pass) if that
# fails. If batch 8 runs out of GPU memory, the script tries once more at batch 4.
# Measured on the H100: small, batch 8: 2.9 s/step at crop 256 (57.7 GiB), 0.74 s at crop 128 (14.6 GiB).
set -euo pipefail
cd "$(dirname "$0")"
minutes=8
pack=../artifacts/device-pack
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --minutes) minutes=$2; shift 2 ;;
    --pack) pack=$2; shift 2 ;;
    --out|--out=*) echo "device-train.sh: --out is the script's own (\$MAMBAST_RUN_DIR)"; exit 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
out=${OUT:?OUT must name the folder whose files come back}
run=${MAMBAST_RUN_DIR:-/tmp/mambast-run}
[[ -f $pack/weights.pt ]] || { echo "no $pack/weights.pt: carry artifacts/device-pack (mambast.devicekit pack)"; exit 2; }
py=${MAMBAST_PYTHON:-python3}  # the device machine's python3 holds PyTorch
log=$out/train.log
{ nvidia-smi -L || true; $py -c 'import torch, PIL; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "Pillow", PIL.__version__)'; } >"$log" 2>&1 \
  || { cat "$log"; echo "python3 there lacks torch or Pillow"; exit 2; }
# a warm machine resumes its run only if the pack holds the weights the run started from or last
# returned (pack.sha lists both); any other pack starts a new run
sha=$(sha256sum "$pack/weights.pt" | cut -d' ' -f1)
if [[ -f $run/last.pt ]] && ! grep -qxF "$sha" "$run/pack.sha" 2>/dev/null; then rm -rf "$run.old"; mv "$run" "$run.old"; fi
mkdir -p "$run"
[[ -f $run/last.pt ]] || echo "$sha" >"$run/pack.sha"
start_iter=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["iteration"])' "$pack/manifest.json")
attempt=0
train() {
  attempt=$((attempt + 1))
  local start=(--init "$pack/weights.pt" --schedule-start "$start_iter" --warmup 50)
  [[ -f $run/last.pt ]] && start=(--resume)
  local left=$(( minutes * 60 - SECONDS - 60 ))  # leave a minute for splitting and copying back
  (( left < 60 )) && left=60
  PYTHONUNBUFFERED=1 $py -m mambast.train --config small --device cuda --batch 8 --crop 256 --keep-side 512 \
      --content-layers scale-matched --scan kernel --content "$pack/content" --style "$pack/style" --out "$run" \
      --iters 1000000 --max-minutes "$(awk "BEGIN{print $left/60}")" --threads 8 --sample-iters 100 --ckpt-minutes 2 \
      "${start[@]}" "$@" >"$run/attempt$attempt.log" 2>&1
}
set +e
train "${args[@]}"
rc=$?
if [[ $rc -ne 0 ]] && grep -q "out of memory" "$run/attempt$attempt.log"; then
  echo "out of GPU memory: again at batch 4" | tee -a "$log"
  train "${args[@]}" --batch 4
  rc=$?
fi
set -e
cat "$run"/attempt*.log >>"$run/stdout.log"
{ head -n 5 "$run/attempt$attempt.log"; echo ...; tail -n 20 "$run/attempt$attempt.log"; echo "train exit $rc"; } >>"$log"
rm -f "$run"/attempt*.log
if [[ -f $run/last.pt ]]; then
  $py -m mambast.devicekit split --checkpoint "$run/last.pt" --out "$out" >>"$log" 2>&1
  # reweight turns these parts into the next pack's weights.pt, byte for byte: resume from it while warm
  $py -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$out/parts.json" >>"$run/pack.sha"
  cp "$run/log.jsonl" "$out/log.jsonl"
  sample=$(ls "$run"/samples/*.png 2>/dev/null | tail -n 1 || true)
  [[ -n $sample ]] && cp "$sample" "$out/sample.png"
fi
cat "$log"
exit $rc
