#!/bin/bash
# Tip-Adapter (training-free) or Tip-Adapter-F on one dataset, seeds 1 2 3, in CoOp's folder
# layout output/<dataset>/<TRAINER>/<cfg>_<K>shots/seed<S> (a thin wrapper over scripts/run_seeds.sh):
#   DATA=/data bash scripts/tip_adapter/main.sh DATASET CFG SHOTS [TRAINER [KEY VALUE ...]]
#   e.g. DATA=/data bash scripts/tip_adapter/main.sh oxford_pets rn50 16              (TipAdapter)
#        DATA=/data bash scripts/tip_adapter/main.sh eurosat rn50 16 TipAdapterF       (100 epochs)
# TRAINER: TipAdapter (default) or TipAdapterF. The published per-dataset alpha / beta / search
# scale (and EuroSAT's epochs) apply unless TRAINER.TIPADAPTER.* is given. Env as for run_seeds.sh.
set -euo pipefail
DATASET=$1
CFG=$2
SHOTS=$3
TRAINER=${4:-TipAdapter}
shift $(($# < 4 ? $# : 4))
exec bash "$(dirname "$0")/../run_seeds.sh" "${TRAINER}" "${DATASET}" "${CFG}" "${SHOTS}" "$@"
