# Shared by the run scripts (source it from the repository root): the environment they read,
# with defaults, and run_once.
DATA=${DATA:-}  # the datasets root (the simulated datasets need none)
OUTPUT=${OUTPUT:-output}  # the run tree: OUTPUT/<dataset>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S>
if [ -z "${PYTHON:-}" ]; then  # the project's environment (make install / make demo) when it exists
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
SEEDS=${SEEDS:-"1 2 3"}
VARIANT=${VARIANT:-}  # optional sub-folder under <cfg>_<K>shots

# run_once DIR DATASET TRAINER METHOD_CONFIG SEED [train.py flags and KEY VALUE opts ...]
#   Skips DIR when it holds a finished run of the config these arguments build now, as
#   `python -m reports.finished DIR -- ARGS` decides it (the rule results.py and reproduce.sh use:
#   log.txt has the test result after the end signal, and config.yaml is still the run's config);
#   otherwise deletes DIR (a run that died, or one finished under another config, is redone from a
#   clean folder) and runs train.py on configs/datasets/DATASET.yaml with the METHOD_CONFIG yaml.
#   A dataset read from files (every one but the generated simulated*) needs DATA: unset, it
#   stops before anything is deleted.
run_once() {
    local dir=$1 dataset=$2 trainer=$3 method_config=$4 seed=$5 status=0
    shift 5
    local run=(--root "${DATA}" --seed "${seed}" --trainer "${trainer}"
               --dataset-config-file "configs/datasets/${dataset}.yaml" --config-file "${method_config}")
    ${PYTHON} -m reports.finished --quiet "${dir}" -- "${run[@]}" "$@" || status=$?
    if [ "${status}" -eq 0 ]; then
        echo "The results exist at ${dir} (so skip this job)"
        return 0
    elif [ "${status}" -ne 1 ]; then  # not a verdict (unreadable log, bad config, broken python): delete nothing
        return "${status}"
    fi
    if [ -z "${DATA}" ] && [[ "${dataset}" != simulated* ]]; then
        echo "error: DATA is not set: export DATA=/path/to/datasets (the folder holding the CoOp datasets)" >&2
        return 2
    fi
    rm -rf "${dir}"
    ${PYTHON} train.py "${run[@]}" --output-dir "${dir}" "$@"  # CoOp's order: flags, then KEY VALUE opts
}
