#!/bin/bash
# CMM over seeds 1 2 3 in CoOp's layout (output/<dataset>/CMM/<cfg>_<K>shots/seed<S>):
#   DATA=/data bash scripts/cmm/main.sh DATASET CFG SHOTS [KEY VALUE ...]
#   e.g. DATA=/data bash scripts/cmm/main.sh oxford_pets rn50 16
set -euo pipefail
exec bash "$(dirname "$0")/../run_seeds.sh" CMM "$@"
