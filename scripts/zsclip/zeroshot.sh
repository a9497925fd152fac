#!/bin/bash
# Zero-shot CLIP on one dataset (CoOp's scripts/zsclip/zeroshot.sh, in our folder layout).
#   bash scripts/zsclip/zeroshot.sh DATASET CFG [TRAINER]
#   e.g. DATA=/data bash scripts/zsclip/zeroshot.sh oxford_pets rn50
# TRAINER: ZeroshotCLIP (CoOp's per-dataset template, default) or ZeroshotCLIP2 (prompt ensemble).
# Zero-shot ignores shots and seeds: one folder, <cfg>_0shots/seed1. A finished run is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/run_lib.sh
DATASET=$1
CFG=$2
TRAINER=${3:-ZeroshotCLIP}

run_once "${OUTPUT}/${DATASET}/${TRAINER}/${CFG}_0shots/seed1" "${DATASET}" "${TRAINER}" \
    "configs/trainers/ZeroshotCLIP/${CFG}.yaml" 1
