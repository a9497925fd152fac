#!/bin/bash
# Zero-shot CLIP cross-modal retrieval (image->text, text->image mAP on the target classes'
# test pairs): ZeroshotCLIP evaluated on a paired dataset.
#   DATA=/data bash scripts/zsclip/retrieval.sh DATASET CFG      e.g. wikipedia vit_b16
set -euo pipefail
exec bash "$(dirname "$0")/zeroshot.sh" "$@"
