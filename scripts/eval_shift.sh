#!/bin/bash
# Evaluate the ImageNet models of scripts/run_seeds.sh on ImageNet-V2 / -Sketch / -A / -R:
#   DATA=/data bash scripts/eval_shift.sh TRAINER CFG SHOTS [KEY VALUE ...]
# reads <MODELS>/<SOURCE>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S> (--model-dir) and writes
# <OUTPUT>/<shift set>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S> (eval-only logs: read them
# with `python scripts/results.py output --test-log`). A and R hold 200 of the 1000 classes:
# per-class parameters are mapped by class id. Env as for run_seeds.sh, and SOURCE (imagenet),
# SHIFT_SETS (the four), MODELS (the tree of the trained runs: OUTPUT; MODELS=output/demo reads
# the models `make demo` trained and leaves the demo's tree, and so its report, as it is).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/run_lib.sh
SHIFT_SETS=${SHIFT_SETS:-"imagenetv2 imagenet_sketch imagenet_a imagenet_r"}
SOURCE=${SOURCE:-imagenet}
MODELS=${MODELS:-${OUTPUT}}
TRAINER=$1
CFG=$2
SHOTS=$3
shift 3

for SEED in ${SEEDS}; do
    MODEL_DIR=${MODELS}/${SOURCE}/${TRAINER}/${CFG}_${SHOTS}shots/${VARIANT:+${VARIANT}/}seed${SEED}
    for DATASET in ${SHIFT_SETS}; do
        DIR=${OUTPUT}/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/${VARIANT:+${VARIANT}/}seed${SEED}
        run_once "${DIR}" "${DATASET}" "${TRAINER}" "configs/trainers/${TRAINER}/${CFG}.yaml" "${SEED}" \
            --model-dir "${MODEL_DIR}" --eval-only DATASET.NUM_SHOTS "${SHOTS}" "$@"
    done
done
