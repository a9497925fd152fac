#!/bin/bash
# The ImageNet models of scripts/linear_probe/main.sh evaluated on ImageNet-V2 / -Sketch / -A / -R
# (a thin wrapper over scripts/eval_shift.sh; its SOURCE / SHIFT_SETS / SEEDS env apply):
#   DATA=/data bash scripts/linear_probe/eval.sh CFG SHOTS [KEY VALUE ...]
#   e.g. DATA=/data bash scripts/linear_probe/main.sh imagenet rn50 16 && DATA=/data bash scripts/linear_probe/eval.sh rn50 16
set -euo pipefail
exec bash "$(dirname "$0")/../eval_shift.sh" LinearProbe "$@"
