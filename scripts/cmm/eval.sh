#!/bin/bash
# Evaluate the ImageNet CMM models (scripts/cmm/main.sh imagenet CFG SHOTS) on ImageNet-V2,
# -Sketch, -A and -R (A and R: the prototypes of their 200 classes, matched by class id, the wnid):
#   DATA=/data bash scripts/cmm/eval.sh CFG SHOTS
set -euo pipefail
exec bash "$(dirname "$0")/../eval_shift.sh" CMM "$@"
