#!/bin/bash
# CoOp's distribution-shift evaluation (CoOp's scripts/coop/eval.sh): the ImageNet models of
# scripts/coop/main.sh, evaluated on ImageNet-V2 / -Sketch / -A / -R:
#   DATA=/data bash scripts/coop/eval.sh CFG SHOTS [NCTX CSC CTP [KEY VALUE ...]]
# e.g.  bash scripts/coop/eval.sh rn50_ep50 16   (CFG as trained: ImageNet runs use *_ep50)
# reads output/imagenet/CoOp/<cfg>_<K>shots/nctx<NCTX>_csc<CSC>_ctp<CTP>/seed<S> and writes
# output/<shift set>/CoOp/<same>/seed<S>; the last epoch's context is loaded (CoOp's
# --load-epoch 50), the class prompts are rebuilt for the shift set's class names, and
# class-specific contexts are picked by name (ImageNet-A/R hold 200 of the 1000 classes).
# Read the logs with `python scripts/results.py output --test-log`.
# Env: DATA, SEEDS, PYTHON, SHIFT_SETS as for scripts/eval_shift.sh; FEATURE_VIEWS as for main.sh.
set -euo pipefail
CFG=$1
SHOTS=$2
NCTX=${3:-16}
CSC=${4:-False}
CTP=${5:-end}
shift $(($# < 5 ? $# : 5))
FEATURE_VIEWS=${FEATURE_VIEWS:-0}
VARIANT=nctx${NCTX}_csc${CSC}_ctp${CTP}
if [ "${FEATURE_VIEWS}" != 0 ]; then
    VARIANT=${VARIANT}_fv${FEATURE_VIEWS}
fi

VARIANT=${VARIANT} bash "$(dirname "$0")/../eval_shift.sh" CoOp "${CFG}" "${SHOTS}" \
    TRAINER.COOP.N_CTX "${NCTX}" TRAINER.COOP.CSC "${CSC}" TRAINER.COOP.CLASS_TOKEN_POSITION "${CTP}" "$@"
