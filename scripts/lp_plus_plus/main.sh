#!/bin/bash
# LP++ on one dataset, seeds 1 2 3, in CoOp's folder layout
# output/<dataset>/LPPlusPlus/<cfg>_<K>shots/seed<S> (a thin wrapper over scripts/run_seeds.sh):
#   DATA=/data bash scripts/lp_plus_plus/main.sh DATASET CFG SHOTS [KEY VALUE ...]
#   e.g. DATA=/data bash scripts/lp_plus_plus/main.sh oxford_pets rn50 16            (strict: no validation)
#        DATA=/data bash scripts/lp_plus_plus/main.sh dtd rn50_full_val 16           (epoch chosen on full val)
# Nothing is searched: initialisation and step sizes are LP++'s closed forms. Env as for run_seeds.sh.
set -euo pipefail
DATASET=$1
CFG=$2
SHOTS=$3
shift 3
exec bash "$(dirname "$0")/../run_seeds.sh" LPPlusPlus "${DATASET}" "${CFG}" "${SHOTS}" "$@"
