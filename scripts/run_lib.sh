# Shared by the run scripts (source it from the repository root): the environment they read,
# with defaults, and run_once.
DATA=${DATA:-/path/to/datasets}  # the datasets root
PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-"1 2 3"}
VARIANT=${VARIANT:-}  # optional sub-folder under <cfg>_<K>shots

# run_once DIR END_SIGNAL DATASET TRAINER METHOD_CONFIG SEED [train.py flags and KEY VALUE opts ...]
#   Skips DIR when its log.txt holds END_SIGNAL (a regex) and a test figure (accuracy or mAP);
#   otherwise deletes DIR (a run that died is redone from scratch, never appended to) and runs
#   train.py on configs/datasets/DATASET.yaml with the METHOD_CONFIG yaml.
run_once() {
    local dir=$1 end_signal=$2 dataset=$3 trainer=$4 method_config=$5 seed=$6
    shift 6
    if [ -f "${dir}/log.txt" ] && grep -Eq "${end_signal}" "${dir}/log.txt" \
        && grep -Eq "^\* (accuracy|mAP):" "${dir}/log.txt"; then
        echo "The results exist at ${dir} (so skip this job)"
        return 0
    fi
    rm -rf "${dir}"
    ${PYTHON} train.py \
        --root "${DATA}" \
        --seed "${seed}" \
        --trainer "${trainer}" \
        --dataset-config-file "configs/datasets/${dataset}.yaml" \
        --config-file "${method_config}" \
        --output-dir "${dir}" \
        "$@"
}
