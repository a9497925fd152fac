#!/bin/bash
# The ImageNet models of scripts/lp_plus_plus/main.sh evaluated on ImageNet-V2 / -Sketch / -A / -R
# (a thin wrapper over scripts/eval_shift.sh; its SOURCE / SHIFT_SETS / SEEDS env apply):
#   DATA=/data bash scripts/lp_plus_plus/eval.sh CFG SHOTS [KEY VALUE ...]
#   e.g. DATA=/data bash scripts/lp_plus_plus/main.sh imagenet rn50 16 && DATA=/data bash scripts/lp_plus_plus/eval.sh rn50 16
# The checkpoint holds the prototypes, bias, alpha and text prototypes; on A / R (200 of the 1000
# classes) their rows are picked by class id.
set -euo pipefail
CFG=$1
SHOTS=$2
shift 2
exec bash "$(dirname "$0")/../eval_shift.sh" LPPlusPlus "${CFG}" "${SHOTS}" "$@"
