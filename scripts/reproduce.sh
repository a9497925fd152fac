#!/bin/bash
# Reproduce a named experiment (configs/experiments/NAME.yaml) with one command: prerequisite
# check, feature extraction, every run (resumable), then table, curves and provenance in
# <output>/report/. `--help` lists the options (--dry-run, --jobs N, --launcher slurm, ...).
#   bash scripts/reproduce.sh simulated                       # minutes on a laptop CPU
#   DATA=/data bash scripts/reproduce.sh rn50_fewshot --dry-run
#   DATA=/data bash scripts/reproduce.sh rn50_fewshot --launcher slurm --partition gpu
# Env: PYTHON (default: .venv/bin/python if present, else python), DATA (datasets root).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
exec "${PYTHON}" -m experiments.reproduce "$@"
