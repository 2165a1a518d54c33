#!/usr/bin/env bash
# One GPU session (device tool), 2026-11-26 (3rd): the paper's reading in tanh's range [-1, 1].
#   S: the ablation study in [-1, 1] (σ = 0.1 there), CIFAR-10 test images 0-14, one seed,
#      unpadded and edge-padded, in two concurrent lanes, variants in order of priority;
#   C: the choice rule of benchmarks/ablation.py (choice.json);
#   P: the chosen variant as preset `paper`, 15 images × 3 paddings × 3 seeds (results/paper),
#      resuming from the study's seed-0 fits;
#   G: the chosen variant on test images 15-99, one seed, for the significance test (0-14 from P).
# Each step is time-boxed and packed into $OUT/results.tgz as it ends, so a cut-off call still
# returns what is done. The earlier sessions' scripts are in git history (8297620, 653347c).
# Usage on the device, from the repository root, with .gpudata/ (the CIFAR-10 .npz) carried:
#   OUT=... bash benchmarks/gpu_session.sh
# Tiny dry run on a CPU: OUT=/tmp/o ITERS=4 IDX=0-1 SIG='2-3 4-5' DEVICE=cpu T_S=200 bash benchmarks/gpu_session.sh
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
ITERS=${ITERS:-2000} IDX=${IDX:-0-14} SIG=${SIG:-15-34 35-54 55-74 75-99} DEVICE=${DEVICE:-auto}
T_S=${T_S:-290} T_P=${T_P:-150} T_G=${T_G:-110}
R=$OUT/r; mkdir -p "$R"
step() { echo "== $(date +%T) $*"; }
pack() { tar czf "$OUT/results.tgz" -C "$OUT" r; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
python3 -c "import torch, skimage; print('torch', torch.__version__, torch.cuda.is_available(), 'skimage', skimage.__version__)"
ABL="python3 benchmarks/ablation.py --out $R/study --range symmetric --sigma 0.1 --indices $IDX --paddings none,edge --seeds 0 --iters $ITERS --device $DEVICE --set chunk=256"

step "S: the study, two lanes"
A="adam 1e-5, h mean|sgd momentum 0.9, mean loss|adam 3e-6, h mean|sgd lr 1e-2, mean loss|adam 1e-5, no h recurrence|sgd lr 1e-6, sum|adam 1e-5, z_noise 1|adam 1e-3"
B="sgd, mean loss|sgd lr 3e-3, mean loss|adam 1e-6, h mean|adam 1e-5|sgd momentum 0.9, mean loss, h mean|adam 1e-4|sgd lr 1e-5, sum|adam 1e-5, eps 0.5"
SECONDS=0
timeout "$T_S" $ABL --only "$A" > "$R/lane-a.txt" 2>&1 &
timeout "$T_S" $ABL --only "$B" > "$R/lane-b.txt" 2>&1 &
wait
echo "S_wall_s $SECONDS"; grep "^==" "$R"/lane-*.txt

step "C: summary and choice"
timeout 90 $ABL --only "$A|$B" --summary-only 2>&1 | grep -v "^=="
pack

step "P: the chosen variant, 15 images × 3 paddings × 3 seeds"
SECONDS=0
timeout "$T_P" python3 benchmarks/chosen.py "$R/study/choice.json" --out "$R/paper" --indices "$IDX" \
  --seeds 0,1,2 --iters "$ITERS" --device "$DEVICE" 2>&1 | tail -25
echo "P_wall_s $SECONDS"; pack

step "G: the chosen variant on images $SIG, one seed (significance beyond 15 images)"
SECONDS=0
for part in $SIG; do  # slices of whole images (all paddings), each saved when it ends
  left=$((T_G - SECONDS)); [ "$left" -gt 20 ] || break
  timeout "$left" python3 benchmarks/chosen.py "$R/study/choice.json" --out "$R/more" --indices "$part" \
    --seeds 0 --iters "$ITERS" --device "$DEVICE" --data .gpudata/cifar10.npz --chunk 64 2>&1 | grep "^rdip"
done
echo "G_wall_s $SECONDS"; pack
step done
ls -la "$OUT"
