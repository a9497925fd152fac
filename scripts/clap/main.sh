#!/bin/bash
# ZS-LP or CLAP on one dataset, seeds 1 2 3, in CoOp's folder layout
# output/<dataset>/<TRAINER>/<cfg>_<K>shots/seed<S> (a thin wrapper over scripts/run_seeds.sh):
#   DATA=/data bash scripts/clap/main.sh DATASET CFG SHOTS [TRAINER [KEY VALUE ...]]
#   e.g. DATA=/data bash scripts/clap/main.sh oxford_pets rn50 16            (CLAP)
#        DATA=/data bash scripts/clap/main.sh dtd rn50 1 ZSLP                  (zero-shot initialised LP)
# TRAINER: CLAP (default) or ZSLP. Both adapt on the support set only (no validation, protocol
# strict); the config is the original's SGD_lr1e-1_B256_ep300 for every dataset. Env as for run_seeds.sh.
set -euo pipefail
DATASET=$1
CFG=$2
SHOTS=$3
TRAINER=${4:-CLAP}
shift $(($# < 4 ? $# : 4))
exec bash "$(dirname "$0")/../run_seeds.sh" "${TRAINER}" "${DATASET}" "${CFG}" "${SHOTS}" "$@"
