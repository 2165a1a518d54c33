#!/usr/bin/env bash
# One GPU session (device tool): the paper's reading in tanh's range [-1, 1], as run on 2026-11-26
# (3rd session; then with benchmarks/ablation.py and chosen.py, which `rdip study` replaced: git
# history before 2026-12-01 has them).
#   S: the ablation study in [-1, 1] (studies/ablation-symmetric.toml: σ = 0.1 there, CIFAR-10 test
#      images 0-14, one seed, unpadded and edge-padded), two worker processes on the one GPU;
#   P: the chosen variant, preset `paper`, 15 images × 3 paddings × 3 seeds (results/paper);
#   G: preset `paper` on test images 15-99, one seed, for the significance test (0-14 from P).
# Each step is time-boxed and packed into $OUT/results.tgz as it ends, so a cut-off call still
# returns what is done (both commands resume from their folders). The earlier sessions' scripts
# are in git history (8297620, 653347c).
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

step "S: the study, two workers"
# the study file with this run's images, T and device (the committed file: 0-14, T = 2000, auto)
sed -e "s/cifar:0-14/cifar:$IDX/" -e "/^preset = \"paper-literal\"/a iters = $ITERS\ndevice = \"$DEVICE\"" \
  studies/ablation-symmetric.toml > "$R/ablation-symmetric.toml"
SECONDS=0
timeout "$T_S" python3 -m rdip study "$R/ablation-symmetric.toml" -o "$R/study" --workers 2 -q 2>&1 | tail -3
echo "S_wall_s $SECONDS"; pack

step "P: preset paper, 15 images × 3 paddings × 3 seeds"
SECONDS=0
timeout "$T_P" python3 -m rdip reproduce --preset paper --indices "$IDX" --seeds 0,1,2 --iters "$ITERS" \
  --device "$DEVICE" --set chunk=64 -o "$R/paper" -q 2>&1 | tail -25
echo "P_wall_s $SECONDS"; pack

step "G: preset paper on images $SIG, one seed (significance beyond 15 images)"
SECONDS=0
for part in $SIG; do  # slices of whole images (all paddings), each saved when it ends
  left=$((T_G - SECONDS)); [ "$left" -gt 20 ] || break
  timeout "$left" python3 -m rdip reproduce --preset paper --indices "$part" --seeds 0 --iters "$ITERS" \
    --device "$DEVICE" --data .gpudata/cifar10.npz --set chunk=64 -o "$R/more-$part" -q 2>&1 | grep "^rdip"
done
echo "G_wall_s $SECONDS"; pack
step done
ls -la "$OUT"
