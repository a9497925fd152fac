#!/bin/bash
# CoOp's linear-probe CLIP (C searched on the few-shot val split) on one dataset, seeds 1 2 3, in CoOp's folder layout
# output/<dataset>/LinearProbe/<cfg>_<K>shots/seed<S> (a thin wrapper over scripts/run_seeds.sh):
#   DATA=/data bash scripts/linear_probe/main.sh DATASET CFG SHOTS [KEY VALUE ...]
#   e.g. DATA=/data bash scripts/linear_probe/main.sh oxford_pets rn50 16
set -euo pipefail
exec bash "$(dirname "$0")/../run_seeds.sh" LinearProbe "$@"
