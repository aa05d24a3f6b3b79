#!/usr/bin/env bash
# Train on the lent GPU machine (the `device` tool), from a devicekit pack, and write the result to
# $OUT in pieces the tool can bring back (<= 8 files of <= 16 MiB).
#
# Here, first (see docs/evaluation.md, "Training on the GPU machine"):
#   cd model && /usr/bin/python3 -m mambast.devicekit pack --checkpoint ../artifacts/train/X/last.pt \
#       --content ../artifacts/training-data/train-content --style ../artifacts/training-data/train-style
# Then, with the device tool, carrying artifacts/device-pack:
#   bash model/device-train.sh --minutes 8 [more mambast.train flags, e.g. --lr 1e-4]
# Back here: python -m mambast.devicekit join --parts <files_at>/parts.json --out ../artifacts/train/gpu/weights.pt
#
# While the machine stays warm, a second call resumes from /tmp/mambast-run/last.pt (Adam moments
# included); a fresh machine starts again from the pack's weights with a fresh optimiser. The scan
# is recomputed in the backward pass on CUDA (mambast.train --recompute-scan auto); if batch 8 still
# runs out of GPU memory, the script tries once more at batch 4.
set -euo pipefail
cd "$(dirname "$0")"
minutes=8
pack=../artifacts/device-pack
if [[ "${1:-}" == "--minutes" ]]; then minutes=$2; shift 2; fi
if [[ "${1:-}" == "--pack" ]]; then pack=$2; shift 2; fi
out=${OUT:?OUT must name the folder whose files come back}
run=${MAMBAST_RUN_DIR:-/tmp/mambast-run}
[[ -f $pack/weights.pt ]] || { echo "no $pack/weights.pt: carry artifacts/device-pack (mambast.devicekit pack)"; exit 2; }
py=${MAMBAST_PYTHON:-python3}  # the device machine's python3 holds PyTorch
log=$out/train.log
{ nvidia-smi -L || true; $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'; } >"$log" 2>&1
train() {
  local start=(--init "$pack/weights.pt")
  [[ -f $run/last.pt ]] && start=(--resume)
  PYTHONUNBUFFERED=1 $py -m mambast.train --config small --device cuda --batch 8 --crop 256 --keep-side 512 \
      --content-layers scale-matched --content "$pack/content" --style "$pack/style" --out $run \
      --iters 1000000 --max-minutes "$minutes" --threads 8 --sample-iters 100 --ckpt-minutes 2 \
      "${start[@]}" "$@" >>$run/stdout.log 2>&1
}
mkdir -p $run
set +e
train "$@"
rc=$?
if [[ $rc -ne 0 ]] && grep -q "out of memory" $run/stdout.log; then
  echo "out of GPU memory at batch 8: again at batch 4" | tee -a "$log" >>$run/stdout.log
  train "$@" --batch 4
  rc=$?
fi
set -e
{ head -n 5 $run/stdout.log; echo ...; tail -n 20 $run/stdout.log; echo "train exit $rc"; } >>"$log"
if [[ -f $run/last.pt ]]; then
  $py -m mambast.devicekit split --checkpoint $run/last.pt --out "$out" >>"$log" 2>&1
  cp $run/log.jsonl "$out/log.jsonl"
  sample=$(ls $run/samples/*.png 2>/dev/null | tail -n 1 || true)
  [[ -n $sample ]] && cp "$sample" "$out/sample.png"
fi
cat "$log"
exit $rc
