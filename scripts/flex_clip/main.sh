#!/bin/bash
# FLEX-CLIP over seeds 1 2 3 in CoOp's layout (output/<dataset>/FLEXCLIP/<cfg>_<K>shots/seed<S>).
# The dataset decides the task: a paired dataset (wikipedia, pascal_sentence, nus_wide_10k,
# xmedianet, simulated_pairs) is few-shot cross-modal retrieval with K target pairs per class;
# a classification dataset (oxford_pets, ..., simulated) is FLEX-CLIP's classification row.
#   DATA=/data bash scripts/flex_clip/main.sh DATASET CFG SHOTS [KEY VALUE ...]
#   e.g. DATA=/data bash scripts/flex_clip/main.sh oxford_pets rn50 16
set -euo pipefail
exec bash "$(dirname "$0")/../run_seeds.sh" FLEXCLIP "$@"
