#!/usr/bin/env bash
# The GPU session of the GPU issue in one call (benchmarks/gpu_session.py says what each phase
# measures; prepared 2026-12-01 and run at tiny sizes on the CPU, never yet on a GPU).
#
# The device's image lacks PyWavelets (rdip's noise estimate needs it): carry its wheel. Once, here:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl PyWavelets==1.10.0
# then, with the device tool: run(command="OUT=$OUT bash benchmarks/gpu_session.sh", carry=[".whl"],
# timeout_s=BUDGET + 90). BUDGET (seconds for all phases, default 450) and PHASES (default EKGTDQPRC)
# pass through; a rerun can name the phases still missing, e.g. PHASES=QPRC.
# Tiny dry run on a CPU (about 1.5 minutes on 2 cores):  OUT=/tmp/o TINY=1 bash benchmarks/gpu_session.sh
set -u
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$OUT/log.txt" 2>&1
python3 -c "import torch, skimage, pywt; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  2>&1 | tee -a "$OUT/log.txt"
exec python3 benchmarks/gpu_session.py "$OUT" --budget "${BUDGET:-450}" --phases "${PHASES:-EKGTDQPRC}" \
  ${TINY:+--tiny}
