#!/bin/bash
# The ImageNet models of scripts/clap/main.sh evaluated on ImageNet-V2 / -Sketch / -A / -R
# (a thin wrapper over scripts/eval_shift.sh; its SOURCE / SHIFT_SETS / SEEDS env apply):
#   DATA=/data bash scripts/clap/eval.sh CFG SHOTS [TRAINER [KEY VALUE ...]]
#   e.g. DATA=/data bash scripts/clap/main.sh imagenet rn50 16 && DATA=/data bash scripts/clap/eval.sh rn50 16
# The checkpoint holds the trained class weights (and the zero-shot prototypes and multipliers);
# on A / R (200 of the 1000 classes) their rows are picked by class id.
set -euo pipefail
CFG=$1
SHOTS=$2
TRAINER=${3:-CLAP}
shift $(($# < 3 ? $# : 3))
exec bash "$(dirname "$0")/../eval_shift.sh" "${TRAINER}" "${CFG}" "${SHOTS}" "$@"
