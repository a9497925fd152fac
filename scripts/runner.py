"""Running train.py in this process for a list of run folders, CoOp-style: a finished run is
skipped, a folder without a result (a run that died) is deleted and rerun from scratch."""
import os
import shutil

import train
from scripts.results import read_metrics


def is_finished(folder):
    log = os.path.join(folder, "log.txt")
    return os.path.isfile(log) and bool({"accuracy", "mAP"} & set(read_metrics(log)))  # classification | retrieval


def run_if_needed(argv, out):
    """Run ``train.py argv`` (with ``--output-dir out``) unless ``out`` already holds a result;
    returns True when it ran."""
    if is_finished(out):
        return False
    if os.path.exists(out):
        shutil.rmtree(out)
    train.main(["--output-dir", out, *argv], echo=False)  # flags before the KEY VALUE opts
    return True
