"""Running train.py in this process for a list of run folders, CoOp-style: a finished run is
skipped, a folder without a result (a run that died) is deleted and rerun from scratch."""
import os
import shutil

import train
from scripts.results import END_SIGNAL, read_metrics


def is_finished(folder, end_signal=END_SIGNAL):
    """The run's log has a test figure after ``end_signal`` ("=> result" for eval-only runs)."""
    log = os.path.join(folder, "log.txt")
    return os.path.isfile(log) and bool({"accuracy", "mAP"} & set(read_metrics(log, end_signal)))


def run_if_needed(argv, out, end_signal=END_SIGNAL):
    """Run ``train.py argv`` (with ``--output-dir out``) unless ``out`` already holds a result;
    returns True when it ran."""
    if is_finished(out, end_signal):
        return False
    if os.path.exists(out):
        shutil.rmtree(out)
    train.main(["--output-dir", out, *argv], echo=False)  # flags before the KEY VALUE opts
    return True
