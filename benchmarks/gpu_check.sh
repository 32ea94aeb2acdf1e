#!/usr/bin/env bash
# The whole command for a machine with a GPU (the device tool runs it in the repository's
# root): jaxdl from this checkout's src/, packages the machine lacks from carried wheels in
# .whl/ (see benchmarks/README.md), then benchmarks/gpu_check.py, its log and results in $OUT.
set -o pipefail
out="${OUT:-benchmarks/results}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
python3 benchmarks/gpu_check.py --out "$out" "$@" 2>&1 | tee "$out/gpu_check.log"
