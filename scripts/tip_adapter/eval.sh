#!/bin/bash
# The ImageNet models of scripts/tip_adapter/main.sh evaluated on ImageNet-V2 / -Sketch / -A / -R
# (a thin wrapper over scripts/eval_shift.sh; its SOURCE / SHIFT_SETS / SEEDS env apply):
#   DATA=/data bash scripts/tip_adapter/eval.sh CFG SHOTS [TRAINER [KEY VALUE ...]]
#   e.g. DATA=/data bash scripts/tip_adapter/main.sh imagenet rn50 16 TipAdapterF \
#        && DATA=/data bash scripts/tip_adapter/eval.sh rn50 16 TipAdapterF
# The checkpoint holds the cache, the text classifier and the searched alpha / beta; on A / R
# (200 of the 1000 classes) the value columns and text rows are picked by class id (wnid).
set -euo pipefail
CFG=$1
SHOTS=$2
TRAINER=${3:-TipAdapter}
shift $(($# < 3 ? $# : 3))
exec bash "$(dirname "$0")/../eval_shift.sh" "${TRAINER}" "${CFG}" "${SHOTS}" "$@"
