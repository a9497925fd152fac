"""Tee everything printed to ``<OUTPUT_DIR>/log.txt`` (Dassl's logger), plus console progress bars.

A rerun into the same folder writes ``log.txt-<YYYY-mm-dd-HH-MM-SS>`` so an earlier log is
never overwritten (Dassl); a file that belongs to one log (its config.yaml) takes the same
timestamp. stderr is teed too, so a crash's traceback lands in the log.
"""
import os
import sys
import time
from contextlib import contextmanager

from tqdm import tqdm

LOG_NAME = "log.txt"
_console = {"stream": sys.__stderr__}


class TeeStream:
    """Writes to a console stream (or nowhere, when quiet) and to the log file."""

    def __init__(self, console, file):
        self.console = console
        self.file = file

    def write(self, text):
        if self.console is not None:
            self.console.write(text)
        self.file.write(text)
        return len(text)

    def flush(self):
        if self.console is not None:
            self.console.flush()
        self.file.flush()

    def isatty(self):
        return False


class RunLog:
    """The open log file of a run, for text that belongs in the log but not on the console."""

    def __init__(self, path, file):
        self.path, self.file = path, file

    def companion(self, name):
        """``<OUTPUT_DIR>/<name>`` with this log's rerun timestamp before the extension:
        config.yaml goes with log.txt, config-<time>.yaml with log.txt-<time>."""
        folder, log_name = os.path.split(self.path)
        stem, ext = os.path.splitext(name)
        return os.path.join(folder, stem + log_name[len(LOG_NAME):] + ext)

    def write_file_only(self, text):
        self.file.write(text)
        self.file.flush()


def log_file_path(output_dir):
    path = os.path.join(output_dir, LOG_NAME)
    if os.path.exists(path):
        path += time.strftime("-%Y-%m-%d-%H-%M-%S")
    return path


@contextmanager
def log_to(output_dir, echo=True):
    """Tee stdout and stderr into the run's log file for the duration of the block; yields a RunLog."""
    os.makedirs(output_dir, exist_ok=True)
    path = log_file_path(output_dir)
    saved = sys.stdout, sys.stderr, _console["stream"]
    with open(path, "w") as f:
        sys.stdout = TeeStream(saved[0] if echo else None, f)
        sys.stderr = TeeStream(saved[1] if echo else None, f)
        _console["stream"] = saved[1] if echo else None
        try:
            yield RunLog(path, f)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.stdout, sys.stderr, _console["stream"] = saved


def progress(iterable, desc, total=None, unit="it"):
    """A tqdm bar on the console only (never in log.txt); off when the run is quiet or the
    console is not a terminal (a SLURM .out file would fill with carriage returns)."""
    stream = _console["stream"]
    return tqdm(iterable, desc=desc, total=total, unit=unit, file=stream, disable=True if stream is None else None,
                dynamic_ncols=True, mininterval=0.5, leave=False)
