"""Running train.py in this process for a list of run folders, CoOp-style: a finished run
(``trainers.core.run_log.run_status``, the rule every tool uses) is skipped, a folder without a result
(a run that died) is deleted and rerun from a clean folder."""
import os
import shutil

from trainers.core import run as train
from trainers.core.run_log import run_status


def is_finished(folder, end_signal=None):
    """``run_status(folder, end_signal).finished``: log.txt has the test result after the end
    signal (told from the log when ``end_signal`` is None)."""
    return run_status(folder, end_signal).finished


def run_if_needed(argv, out, end_signal=None):
    """Run ``train.py argv`` (with ``--output-dir out``) unless ``out`` already holds a finished
    run; returns True when it ran."""
    if is_finished(out, end_signal):
        return False
    if os.path.exists(out):
        shutil.rmtree(out)
    train.main(["--output-dir", out, *argv], echo=False)  # flags before the KEY VALUE opts
    return True
