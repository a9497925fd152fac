#!/bin/bash
# CoOp few-shot training and test over seeds 1 2 3 (CoOp's scripts/coop/main.sh):
#   DATA=/data bash scripts/coop/main.sh DATASET CFG SHOTS [NCTX CSC CTP [KEY VALUE ...]]
# NCTX: context vectors (16), CSC: class-specific context (False | True), CTP: class token
# position (end | middle | front). Runs go to CoOp's folders,
#   output/<dataset>/CoOp/<cfg>_<K>shots/nctx<NCTX>_csc<CSC>_ctp<CTP>/seed<S>
# (with FEATURE_VIEWS=N > 0, ..._ctp<CTP>_fv<N>/: training on N cached views per image, not
# CoOp's fresh augmentation every epoch; much faster, see trainers/coop.py).
#
# Which CFG for which shots (CoOp's COOP.md; the paper's schedule):
#   1 shot: <backbone>_ep50   2 and 4 shots: <backbone>_ep100   8 and 16 shots: <backbone> (200 epochs)
#   ImageNet: <backbone>_ep50 for every number of shots.
#   <backbone> = rn50 | rn101 | vit_b32 | vit_b16; add _ctxv1 (rn50, rn50_ep50, vit_b16*) for
#   the context initialised from "a photo of a".
# e.g.  bash scripts/coop/main.sh caltech101 rn50_ep50 1
#       bash scripts/coop/main.sh caltech101 rn50 16 16 True middle
# Env: DATA, SEEDS, PYTHON as for scripts/run_seeds.sh; FEATURE_VIEWS (0).
set -euo pipefail
DATASET=$1
CFG=$2
SHOTS=$3
NCTX=${4:-16}
CSC=${5:-False}
CTP=${6:-end}
shift $(($# < 6 ? $# : 6))
FEATURE_VIEWS=${FEATURE_VIEWS:-0}
VARIANT=nctx${NCTX}_csc${CSC}_ctp${CTP}
if [ "${FEATURE_VIEWS}" != 0 ]; then
    VARIANT=${VARIANT}_fv${FEATURE_VIEWS}
fi

VARIANT=${VARIANT} bash "$(dirname "$0")/../run_seeds.sh" CoOp "${DATASET}" "${CFG}" "${SHOTS}" \
    TRAINER.COOP.N_CTX "${NCTX}" TRAINER.COOP.CSC "${CSC}" TRAINER.COOP.CLASS_TOKEN_POSITION "${CTP}" \
    TRAINER.COOP.FEATURE_VIEWS "${FEATURE_VIEWS}" "$@"
