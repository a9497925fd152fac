#!/bin/bash
# Zero-shot CLIP on one dataset (CoOp's scripts/zsclip/zeroshot.sh, in our folder layout).
#   bash scripts/zsclip/zeroshot.sh DATASET CFG [TRAINER]
#   e.g. DATA=/data bash scripts/zsclip/zeroshot.sh oxford_pets rn50
# TRAINER: ZeroshotCLIP (CoOp's per-dataset template, default) or ZeroshotCLIP2 (prompt ensemble).
# Zero-shot ignores shots and seeds: one folder, <cfg>_0shots/seed1. A finished run is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-/path/to/datasets}
PYTHON=${PYTHON:-python}
DATASET=$1
CFG=$2
TRAINER=${3:-ZeroshotCLIP}

DIR=output/${DATASET}/${TRAINER}/${CFG}_0shots/seed1
if [ -f "${DIR}/log.txt" ] && grep -Eq "^\* (accuracy|mAP):" "${DIR}/log.txt"; then
    echo "The results exist at ${DIR} (so skip this job)"
    exit 0
fi
rm -rf "${DIR}"
${PYTHON} train.py \
    --root "${DATA}" \
    --seed 1 \
    --trainer "${TRAINER}" \
    --dataset-config-file "configs/datasets/${DATASET}.yaml" \
    --config-file "configs/trainers/ZeroshotCLIP/${CFG}.yaml" \
    --output-dir "${DIR}"
