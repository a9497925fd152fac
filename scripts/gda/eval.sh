#!/bin/bash
# The ImageNet models of scripts/gda/main.sh evaluated on ImageNet-V2 / -Sketch / -A / -R
# (a thin wrapper over scripts/eval_shift.sh; its SOURCE / SHIFT_SETS / SEEDS env apply):
#   DATA=/data bash scripts/gda/eval.sh CFG SHOTS [KEY VALUE ...]
#   e.g. DATA=/data bash scripts/gda/main.sh imagenet rn50 16 && DATA=/data bash scripts/gda/eval.sh rn50 16
# The checkpoint holds the text classifier, GDA's W and b and the searched alpha; on A / R
# (200 of the 1000 classes) the rows / columns are picked by class id (wnid).
set -euo pipefail
CFG=$1
SHOTS=$2
shift 2
exec bash "$(dirname "$0")/../eval_shift.sh" GDA "${CFG}" "${SHOTS}" "$@"
