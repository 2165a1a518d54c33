#!/usr/bin/env bash
# The GPU session of issue 24 (prepared 2026-12-01 with the slot engine; dry-run at tiny sizes on
# the CPU, never yet on a GPU). One call, every step time-boxed and writing its results into $OUT
# as it ends, so a call cut off still returns what is done:
#   K: the kernel and precision variants on the Table II workload (rdip bench --json, T = $ITERS):
#      grouped convolutions against one batched matrix product of the slots' patches (formulation),
#      TF32 on/off, bf16 autocast, the step captured as a CUDA graph (capture=graph) and replayed;
#   C: the number of slots (chunk) on the photo workload, for auto_chunk;
#   P: the photo workload (256×256, preset default alone and with ensemble=4) with the best options;
#   T: Table II at seed 0 end to end (rdip reproduce --preset paper --seeds 0, T = 2000);
#   D: rdip denoise of a 768×512 colour photograph, preset default and quality, end to end (with the
#      engine's defaults for the device: set them from K and C, then rerun D alone).
# $OUT ends with 7 files (the device tool returns at most 8): log.txt, k-table2.jsonl, c-chunk.jsonl,
# p-photo.jsonl, t-table2.jsonl, d-denoise.jsonl and runs.tgz (the reproduce folders, denoise records).
# BEST (the --set options of P, T and D) is to be edited after K if another variant wins.
# Usage on the device, from the repository root:  OUT=... bash benchmarks/gpu_session.sh
# Tiny dry run on a CPU (about 2 minutes on 2 cores):
#   OUT=/tmp/o DEVICE=cpu ITERS=2 T2=2 QUICK=--quick PHOTO=96x64 CHUNKS="2" bash benchmarks/gpu_session.sh
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
DEVICE=${DEVICE:-cuda} ITERS=${ITERS:-50} T2=${T2:-2000} QUICK=${QUICK:-} PHOTO=${PHOTO:-768x512}
CHUNKS=${CHUNKS:-128 256 512 1024} BEST=${BEST:---set capture=graph --set dtype=bfloat16}
T_K=${T_K:-40} T_C=${T_C:-60} T_P=${T_P:-120} T_T=${T_T:-90} T_D=${T_D:-120}
mkdir -p "$OUT"
LOG=$OUT/log.txt
step() { echo "== $(date +%T) $*" | tee -a "$LOG"; }
rdip() { python3 -m rdip "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG"
python3 -c "import torch, skimage, imagecodecs, pywt; print('torch', torch.__version__, torch.cuda.is_available())" 2>&1 | tee -a "$LOG"

step "K: kernel and precision variants, Table II workload, T = $ITERS"
for v in "" "--no-tf32" "--set capture=graph" "--set dtype=bfloat16" "--set capture=graph --set dtype=bfloat16" \
         "--set formulation=bmm" "--set formulation=bmm --tf32" "--set formulation=bmm --set dtype=bfloat16" \
         "--set formulation=bmm --set capture=graph --set dtype=bfloat16"; do
  timeout "$T_K" python3 -m rdip bench --json --device "$DEVICE" --iters "$ITERS" $QUICK $v >> "$OUT/k-table2.jsonl" 2>>"$LOG" \
    || echo "{\"variant\": \"$v\", \"error\": \"rc $?\"}" >> "$OUT/k-table2.jsonl"
done
timeout "$T_K" python3 -m rdip bench --json --device "$DEVICE" --iters "$ITERS" $QUICK --stop noise $BEST >> "$OUT/k-table2.jsonl" 2>>"$LOG"

step "C: slots per stack on the photo workload (default only), $BEST"
for c in $CHUNKS; do
  timeout "$T_C" python3 -m rdip bench --json --device "$DEVICE" --workload photo $QUICK $BEST --set chunk="$c" \
    >> "$OUT/c-chunk.jsonl" 2>>"$LOG" || echo "{\"chunk\": $c, \"error\": \"rc $?\"}" >> "$OUT/c-chunk.jsonl"
done

step "P: the photo workload, eager and $BEST"
timeout "$T_P" python3 -m rdip bench --json --device "$DEVICE" --workload photo $QUICK >> "$OUT/p-photo.jsonl" 2>>"$LOG"
timeout "$T_P" python3 -m rdip bench --json --device "$DEVICE" --workload photo $QUICK $BEST >> "$OUT/p-photo.jsonl" 2>>"$LOG"

step "T: Table II at seed 0 end to end, T = $T2, eager and $BEST"
for how in eager best; do
  opts=""; [ "$how" = best ] && opts=$BEST
  SECONDS=0
  timeout "$T_T" python3 -m rdip reproduce --preset paper --seeds 0 --iters "$T2" --device "$DEVICE" $opts \
    -o "$OUT/t-$how" -q 2>>"$LOG"
  echo "{\"how\": \"$how\", \"wall_s\": $SECONDS, \"rc\": $?}" | tee -a "$OUT/t-table2.jsonl"
done

step "D: rdip denoise, a ${PHOTO} colour photograph, default and quality (the engine's defaults for $DEVICE)"
python3 - "$PHOTO" "$OUT/photo.png" <<'EOF'
import sys
import numpy as np
from PIL import Image
from skimage import data
width, height = map(int, sys.argv[1].split("x"))
Image.fromarray(np.asarray(Image.fromarray(data.coffee()).resize((width, height), Image.LANCZOS))).save(sys.argv[2])
EOF
for p in default quality; do
  SECONDS=0
  timeout "$T_D" python3 -m rdip denoise "$OUT/photo.png" -o "$OUT/d-$p.png" --preset "$p" --add-noise-255 25 \
    --device "$DEVICE" -q --force 2>>"$LOG"
  echo "{\"preset\": \"$p\", \"wall_s\": $SECONDS, \"rc\": $?}" | tee -a "$OUT/d-denoise.jsonl"
done
rm -f "$OUT"/d-*.png "$OUT/photo.png"
kept=$(cd "$OUT" && ls -d t-eager t-best d-default.json d-quality.json 2>/dev/null)
[ -n "$kept" ] && tar czf "$OUT/runs.tgz" -C "$OUT" $kept 2>>"$LOG" && (cd "$OUT" && rm -rf $kept)
step done
ls -la "$OUT" | tee -a "$LOG"
