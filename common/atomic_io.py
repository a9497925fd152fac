"""Atomic file writes: write a temporary file beside the target, fsync, then rename.

A reader therefore sees either the old file, the complete new file, or nothing; a run
killed mid-write leaves only a ``.tmp-*`` file that no reader ever opens.
"""
import json
import os
import tempfile
from contextlib import contextmanager

TMP_MARK = ".tmp-"


@contextmanager
def atomic_path(path):
    """Yield a temporary path to write; on success it replaces ``path`` atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + TMP_MARK, dir=directory)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a shared cache must be readable
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(obj, path, indent=4):
    """Write JSON the way Dassl's ``write_json`` formats it, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=indent, separators=(",", ": "))


def torch_save(obj, path):
    """``torch.save`` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
