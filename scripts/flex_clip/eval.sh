#!/bin/bash
# Evaluate the ImageNet FLEX-CLIP models (classification row) on ImageNet-V2 / -Sketch / -A / -R:
#   DATA=/data bash scripts/flex_clip/eval.sh CFG SHOTS
set -euo pipefail
exec bash "$(dirname "$0")/../eval_shift.sh" FLEXCLIP "$@"
