"""Running train.py in this process for a list of run folders, CoOp-style: a finished run
(``trainers.core.run_log.run_status``, the rule every tool uses) is skipped; a folder without a
result (a run that died), or with a result under another config (stale), is deleted and the run
redone from a clean folder."""
import os
import shutil

from trainers.core import run as train


def run_if_needed(argv, out, end_signal=None):
    """Run ``train.py argv`` (with ``--output-dir out``) unless ``out`` already holds a finished
    run of the config ``argv`` builds now; returns True when it ran."""
    status = train.current_status(out, argv, end_signal)
    if status.finished:
        return False
    if status.stale:
        print(f"Redoing {out}: {status.why}", flush=True)
    if os.path.exists(out):
        shutil.rmtree(out)
    train.main(["--output-dir", out, *argv], echo=False)  # flags before the KEY VALUE opts
    return True
