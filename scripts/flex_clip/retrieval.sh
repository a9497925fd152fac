#!/bin/bash
# FLEX-CLIP few-shot cross-modal retrieval over seeds 1 2 3 (X = SHOTS pairs per target class):
#   DATA=/data bash scripts/flex_clip/retrieval.sh DATASET CFG SHOTS [KEY VALUE ...]
#   e.g. DATA=/data bash scripts/flex_clip/retrieval.sh wikipedia vit_b16 4
# The zero-shot baseline: bash scripts/zsclip/retrieval.sh DATASET CFG. Read the mean mAP with
#   python scripts/results.py output --metric mAP
set -euo pipefail
exec bash "$(dirname "$0")/main.sh" "$@"
