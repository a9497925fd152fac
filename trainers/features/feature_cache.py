"""The on-disk feature cache: frozen CLIP features, encoded once, stored as fp16.

An entry is one file per (backbone + weights digest, dataset, split, ordered sample list with
each image file's identity, transform, view, precision): the SHA-256 of all of these is the
entry's key and part of its file name, so any change means a different file and stale
features are never reused. The identity of an image file (``FEATURES.IMAGE_IDENTITY``) is its
size and modification time (``stat``, nearly free) or the SHA-256 of its bytes (``sha256``,
reads every byte); the relative path stays in the key too, so two copies of a dataset share
entries exactly when their files are the same.

Entries are immutable and written atomically (temporary file + rename), so concurrent runs
(three seeds on a cluster) and killed runs are safe. Each entry stores its key, its sample
list and a SHA-256 of its fp16 payload; a file that does not match its key (truncated,
foreign, edited) or whose payload fails the checksum (bytes flipped on disk) is reported by
name and re-encoded rather than trusted.
"""
import errno
import hashlib
import json
import os
from contextlib import contextmanager

import torch

from common.atomic_io import torch_save
from common.hashing import file_sha256

FORMAT = 2  # 2: image identities in the key, payload checksum
IMAGE_IDENTITY_MODES = ("stat", "sha256")
# Errors that mean "this folder cannot take our files"; any other OSError is a bug to show as is.
UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EEXIST}


class CacheNotWritableError(RuntimeError):
    """The feature cache folder cannot be written (permissions, read-only or full disk)."""


def default_cache_root():
    return os.path.join(os.environ.get("FEWSHOT_CLIP_CACHE") or os.path.expanduser("~/.cache/fewshot_clip"),
                        "features")


@contextmanager
def writing_to(folder):
    """Turn a failed write under ``folder`` into an error that names it and says how to choose
    another; the atomic writes underneath have already removed their temporary files."""
    try:
        yield
    except OSError as e:
        if e.errno not in UNWRITABLE:
            raise
        raise CacheNotWritableError(
            f"cannot write to the feature cache folder {folder} ({e.strerror}: {e.filename}). Choose another "
            "with FEATURES.CACHE_DIR <folder>, or, when FEATURES.CACHE_DIR is empty, with the "
            "FEWSHOT_CLIP_CACHE environment variable (the cache is then $FEWSHOT_CLIP_CACHE/features)"
        ) from e


def entry_key(**fields):
    """A stable key for everything that determines a set of features."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def file_identities(paths, mode):
    """What the key holds of each file besides its relative path: ``[size, mtime_ns]`` in
    ``stat`` mode, the SHA-256 of the bytes in ``sha256`` mode (see the module docstring)."""
    if mode == "stat":
        return [[st.st_size, st.st_mtime_ns] for st in map(os.stat, paths)]
    if mode == "sha256":
        return [file_sha256(path) for path in paths]
    raise ValueError(f"FEATURES.IMAGE_IDENTITY must be one of {', '.join(IMAGE_IDENTITY_MODES)}, got {mode!r}")


def payload_checksum(features):
    """SHA-256 of a tensor's bytes (hashlib's is hardware-accelerated on current x86 CPUs: about
    a tenth of the time of loading the entry; see scripts/bench_feature_cache.py)."""
    data = features.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read_entry(path):
    """The entry stored at ``path``, or None (with a message naming it) if it cannot be read."""
    if not os.path.isfile(path):
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated / corrupt file: never trust it
        print(f"Feature cache entry {path} is unreadable ({type(e).__name__}: {e}): re-encoding")
        return None


def entry_problem(entry, key, paths):
    """Why ``entry`` cannot serve ``key`` over ``paths`` ("" when it can)."""
    if not (isinstance(entry, dict) and entry.get("format") == FORMAT and entry.get("key") == key
            and entry.get("paths") == list(paths) and torch.is_tensor(entry.get("features"))
            and entry["features"].shape[0] == len(paths)):
        return "does not match its key (stale or foreign)"
    if entry.get("checksum") != payload_checksum(entry["features"]):
        return "fails its checksum (its feature bytes changed on disk)"
    return ""


class FeatureCache:
    """Entries under ``<root>/<backbone slug>/``; counts hits, misses and encoded items, and
    remembers the entries this run read or wrote (the run's feature identity)."""

    def __init__(self, directory):
        self.directory = directory
        self.hits = 0
        self.misses = 0
        self.encoded = 0
        self.used = {}  # "<group>/<label>" -> keys read or written, in order of first use

    def entry_path(self, group, label, key):
        safe_label = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)
        return os.path.join(self.directory, group, f"{safe_label}-{key[:24]}.pt")

    def load(self, group, label, key, paths):
        """The cached fp32 features, or None (counted as a miss) if absent or not trustworthy."""
        path = self.entry_path(group, label, key)
        entry = read_entry(path)
        problem = entry_problem(entry, key, paths) if entry is not None else ""
        if problem:
            print(f"Feature cache entry {path} {problem}: re-encoding")
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self.note(group, label, key)
        return entry["features"].float()

    def save(self, group, label, key, paths, features, meta, write=True):
        """Store fp16 features; return them as a later hit will (fp32 of the fp16 values), so a
        run gives the same numbers whether or not the cache was warm. ``write=False``: only the
        return value (another process of a torchrun group writes the entry)."""
        stored = features.to(torch.float16).contiguous()
        if write:
            entry = {"format": FORMAT, "key": key, "paths": list(paths), "features": stored,
                     "checksum": payload_checksum(stored), "meta": meta}
            with writing_to(self.directory):
                torch_save(entry, self.entry_path(group, label, key))
        self.encoded += len(paths)
        self.note(group, label, key)
        return stored.float()

    def note(self, group, label, key):
        keys = self.used.setdefault(f"{group}/{label}", [])
        if key not in keys:
            keys.append(key)

    def entries(self):
        """``{"<group>/<label>": key[:16]}`` of the entries used (a list where one label had several)."""
        return {name: keys[0][:16] if len(keys) == 1 else [k[:16] for k in keys] for name, keys in self.used.items()}

    def summary(self):
        return (f"Feature cache: {self.hits} hit(s), {self.misses} miss(es), "
                f"{self.encoded:,} item(s) encoded ({self.directory})")
