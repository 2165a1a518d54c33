#!/usr/bin/env bash
# One GPU session (device tool), 2026-11-26 (2nd): finish the paper's full run, GPU speed options
# and their SSIM effect, DIP and ZS-N2N on the photograph crops. Each step is time-boxed and packed
# into $OUT/results.tgz as it ends, so a cut-off call still returns what is done.
# Usage on the device, from the repository root, with .gpudata/ (Set12 01-04, McMaster 1) carried:
#   OUT=... bash benchmarks/gpu_session.sh
# (The first GPU session's script, with the bench and the ablation, is in git history: 653347c.)
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
R=$OUT/r; mkdir -p "$R"
STRICT="import sys, torch; torch.backends.cudnn.allow_tf32 = False
sys.argv = ['rdip'] + sys.argv[1:]; from rdip.cli import run; run()"  # python3 -c "$STRICT" …: TF32 off
step() { echo "== $(date +%T) $*"; }
pack() { tar czf "$OUT/results.tgz" -C "$OUT" r; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
python3 -c "import torch, skimage; print('torch', torch.__version__, torch.cuda.is_available(), 'skimage', skimage.__version__)"

step "A: paper full run, resumed from the saved CPU fits"
cp -r results/paper "$R/paper"
TIMEFORMAT="A_wall_s %R"
time timeout 170 python3 -m rdip reproduce --preset paper --indices 0-14 --seeds 0,1,2 --iters 2000 \
  --set chunk=256 --out "$R/paper" --quiet 2>&1 | tail -4; pack

step "B: speed options on the Table II shape"
[ "${SKIP_B:-}" ] || timeout 100 python3 benchmarks/gpu_options.py --iters 200 --profile 2>&1 | tee "$R/gpu_options.txt" | grep -v "^-\|^ *$"; pack

step "D: DIP and ZS-N2N on the crops"
S=.gpudata/set12; M=.gpudata/mcmaster
TIMEFORMAT="D_set12_wall_s %R"
time timeout 110 python3 -m rdip compare --methods dip,zsn2n --set dip.device=cuda --set zsn2n.device=cuda --images $S/01.png,$S/02.png,$S/03.png,$S/04.png \
  --sigma-255 15,25,50 --crop 64 --out "$R/set12-crop64" 2>&1 | tail -3; pack
TIMEFORMAT="D_mcmaster_wall_s %R"
time timeout 50 python3 -m rdip compare --methods dip,zsn2n --set dip.device=cuda --set zsn2n.device=cuda --images $M/1.tif --sigma-255 15,25,50 --crop 64 \
  --out "$R/mcmaster-crop64" 2>&1 | tail -3; pack

step "C: Table II at seed 0, TF32 (default) / bf16 autocast / fp32 strict"
for v in tf32 bf16 fp32; do
  TIMEFORMAT="C_${v}_wall_s %R"
  case $v in
    tf32) time timeout 70 python3 -m rdip reproduce --preset paper --seeds 0 --set chunk=256 --out "$R/t2-$v" --quiet 2>&1 | tail -2 ;;
    bf16) time timeout 70 python3 -m rdip reproduce --preset paper --seeds 0 --set chunk=256 --set dtype=bfloat16 --out "$R/t2-$v" --quiet 2>&1 | tail -2 ;;
    fp32) time timeout 70 python3 -c "$STRICT" reproduce --preset paper --seeds 0 --set chunk=256 --out "$R/t2-$v" --quiet 2>&1 | tail -2 ;;
  esac
  rm -f "$R/t2-$v"/fits/*.npy; pack
done
step done
ls -la "$OUT"
