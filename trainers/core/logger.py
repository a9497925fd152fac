"""Tee everything printed to ``<OUTPUT_DIR>/log.txt`` (Dassl's logger), plus console progress bars.

A rerun into the same folder writes ``log.txt-<YYYY-mm-dd-HH-MM-SS>`` so an earlier log is
never overwritten (Dassl); a file that belongs to one log (its config.yaml) takes the same
timestamp. The caller may instead continue ``log.txt`` (``continue_with``: the line to mark the
place): train.py does so when ``log.txt`` holds a run that did not finish, so the run a resume
completes is read from ``log.txt`` (``trainers.core.run_log.run_status``). stderr is teed too, so a
crash's traceback lands in the log. The file is line-buffered: after a SIGKILL it holds every
line printed before.
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


def log_file_path(output_dir, continue_log=False):
    """``log.txt``, unless it exists and is not to be continued: then ``log.txt-<timestamp>``."""
    path = os.path.join(output_dir, LOG_NAME)
    if os.path.exists(path) and not continue_log:
        path += time.strftime("-%Y-%m-%d-%H-%M-%S")
    return path


def ends_with_newline(path):
    """Whether the file is empty or its last byte is a newline (a killed run may stop mid-line)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


@contextmanager
def log_to(output_dir, echo=True, continue_with=None):
    """Tee stdout and stderr into the run's log file for the duration of the block; yields a RunLog.
    With ``continue_with`` (a line of text) an existing ``log.txt`` is appended to after that line."""
    os.makedirs(output_dir, exist_ok=True)
    path = log_file_path(output_dir, continue_with is not None)
    appending = continue_with is not None and os.path.exists(path)
    saved = sys.stdout, sys.stderr, _console["stream"]
    with open(path, "a" if appending else "w", buffering=1) as f:  # line-buffered: nothing lost to a SIGKILL
        if appending:
            f.write(("" if ends_with_newline(path) else "\n") + continue_with + "\n")
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
