#!/bin/bash
# GDA (training-free) on one dataset, seeds 1 2 3, in CoOp's folder layout
# output/<dataset>/GDA/<cfg>_<K>shots/seed<S> (a thin wrapper over scripts/run_seeds.sh):
#   DATA=/data bash scripts/gda/main.sh DATASET CFG SHOTS [KEY VALUE ...]
#   e.g. DATA=/data bash scripts/gda/main.sh oxford_pets rn50 16                 (strict protocol)
#        DATA=/data bash scripts/gda/main.sh oxford_pets rn50_full_val 16        (the original's protocol)
# Env as for run_seeds.sh.
set -euo pipefail
DATASET=$1
CFG=$2
SHOTS=$3
shift 3
exec bash "$(dirname "$0")/../run_seeds.sh" GDA "${DATASET}" "${CFG}" "${SHOTS}" "$@"
