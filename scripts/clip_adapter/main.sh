#!/bin/bash
# CLIP-Adapter (trained on cached features) on one dataset, seeds 1 2 3, in CoOp's folder layout
# output/<dataset>/CLIPAdapter/<cfg>_<K>shots/seed<S> (a thin wrapper over scripts/run_seeds.sh):
#   DATA=/data bash scripts/clip_adapter/main.sh DATASET CFG SHOTS [KEY VALUE ...]
#   e.g. DATA=/data bash scripts/clip_adapter/main.sh oxford_pets rn50 16
set -euo pipefail
exec bash "$(dirname "$0")/../run_seeds.sh" CLIPAdapter "$@"
