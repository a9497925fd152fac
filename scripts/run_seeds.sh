#!/bin/bash
# Train and test one trainer on one dataset for each seed, in CoOp's folder layout:
#   <OUTPUT>/<dataset>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S>
#   DATA=/data bash scripts/run_seeds.sh TRAINER DATASET CFG SHOTS [KEY VALUE ...]
# Env: DATA (datasets root; not needed by the simulated datasets), OUTPUT (the run tree: output;
# OUTPUT=output/demo works in the tree `make demo` writes), SEEDS ("1 2 3"), VARIANT (optional
# sub-folder), PYTHON.
# A finished run (its log has the test result) is skipped; an unfinished folder is deleted
# and rerun from scratch, never appended to.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/run_lib.sh
TRAINER=$1
DATASET=$2
CFG=$3
SHOTS=$4
shift 4

for SEED in ${SEEDS}; do
    DIR=${OUTPUT}/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/${VARIANT:+${VARIANT}/}seed${SEED}
    run_once "${DIR}" "${DATASET}" "${TRAINER}" "configs/trainers/${TRAINER}/${CFG}.yaml" "${SEED}" \
        DATASET.NUM_SHOTS "${SHOTS}" "$@"
done
