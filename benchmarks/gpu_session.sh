#!/usr/bin/env bash
# One GPU session (device tool): bench, Table II timing, 512×512 timing, ablation study, full run.
# Usage on the device: OUT=... bash benchmarks/gpu_session.sh   (ITERS, INDICES for a smoke test)
set -u
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
ITERS=${ITERS:-2000}; ABL_INDICES=${ABL_INDICES:-0-4}; INDICES=${INDICES:-0-14}; SEEDS=${SEEDS:-0,1,2}
R=$OUT/r; mkdir -p "$R"
rdip() { python3 -m rdip "$@"; }
step() { echo "== $(date +%T) $*"; }
pack() { tar czf "$OUT/results.tgz" -C "$OUT" r; }  # after every step: a cut-off call still returns what is done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"

step bench
timeout 90 rdip bench --json > "$R/bench.json"; echo "rc=$?"; cat "$R/bench.json"; pack

step "table II workload, one seed, T=$ITERS"
TIMEFORMAT="table2_seed0_wall_s %R"
time timeout 100 python3 -m rdip reproduce --preset paper --seeds 0 --indices "$INDICES" \
  --iters "$ITERS" --set chunk=256 --out "$R/table2_seed0" --quiet 2>&1 | tail -3; pack

step "512x512 RGB, T=$ITERS"
python3 -c "
import numpy as np; y,x=np.mgrid[0:512,0:512]/512
img=np.stack([0.5+0.4*np.sin(6*x), 0.5+0.4*np.cos(5*y), 0.5+0.3*np.sin(4*(x+y))],-1)
np.save('/tmp/big.npy', img)"
TIMEFORMAT="big512_wall_s %R"
time timeout 90 python3 -m rdip denoise /tmp/big.npy -o "$R/big512.npy" --add-noise 0.1 \
  --iters "$ITERS" --preset paper --quiet --force; rm -f "$R/big512.npy"; pack

step ablation
timeout 200 python3 benchmarks/ablation.py --out "$R/ablation" --indices "$ABL_INDICES" --iters "$ITERS" | tail -70; pack

step "full reproduction with the best ablation variant"
python3 - "$R" > "$R/chosen.txt" <<'PY'
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1] + "/ablation/summary.csv")))
score = collections.defaultdict(list)
for r in rows:
    score[r["variant"]].append(float(r["full at T"]))
best = max((v for v in score if not v.startswith("literal")), key=lambda v: sum(score[v]))
print(best)
PY
CHOSEN=$(cat "$R/chosen.txt"); echo "chosen: $CHOSEN"
SETS=$(python3 -c "
import sys; sys.path.insert(0,'benchmarks'); from ablation import VARIANTS
from rdip.config import preset
sets, clip = VARIANTS[sys.argv[1]]; c = preset('paper-literal', **sets)
keys = ['optimizer','lr','momentum','loss_reduction','epsilon','z_noise_std','h_mode','h_leak','ema']
print(' '.join(f'--set {k}={getattr(c,k)}' for k in keys) + (' --clip-noise' if clip else ''))" "$CHOSEN")
echo "sets: $SETS"; echo "$SETS" > "$R/chosen_sets.txt"
TIMEFORMAT="full_wall_s %R"
time timeout 120 python3 -m rdip reproduce --preset paper $SETS --seeds "$SEEDS" --indices "$INDICES" \
  --iters "$ITERS" --set chunk=256 --out "$R/paper" --quiet 2>&1 | tail -3
sed -n 1,30p "$R/paper/table2.md"
step done
pack; ls -la "$OUT"
