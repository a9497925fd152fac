"""The on-disk feature cache: frozen CLIP features, encoded once, stored as fp16.

An entry is one file per (backbone + weights digest, dataset, split, ordered sample list,
transform, view, precision): the SHA-256 of all of these is the entry's key and part of
its file name, so any change means a different file and stale features are never reused.
Entries are immutable and written atomically (temporary file + rename), so concurrent
runs (three seeds on a cluster) and killed runs are safe; each entry also stores its key
and sample list, and a file that does not match its key (truncated, foreign, edited) is
reported and re-encoded rather than trusted.
"""
import hashlib
import json
import os

import torch

from datasets.atomic_io import torch_save

FORMAT = 1


def default_cache_root():
    return os.path.join(os.environ.get("FEWSHOT_CLIP_CACHE") or os.path.expanduser("~/.cache/fewshot_clip"),
                        "features")


def entry_key(**fields):
    """A stable key for everything that determines a set of features."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class FeatureCache:
    """Entries under ``<root>/<backbone slug>/``; counts hits, misses and encoded items."""

    def __init__(self, directory):
        self.directory = directory
        self.hits = 0
        self.misses = 0
        self.encoded = 0

    def entry_path(self, group, label, key):
        safe_label = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)
        return os.path.join(self.directory, group, f"{safe_label}-{key[:24]}.pt")

    def load(self, group, label, key, paths):
        """The cached fp32 features, or None (counted as a miss) if absent or not trustworthy."""
        path = self.entry_path(group, label, key)
        entry = self._read(path)
        if entry is not None and not self._matches(entry, key, paths):
            print(f"Feature cache entry {path} does not match its key (stale or foreign): re-encoding")
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        return entry["features"].float()

    def save(self, group, label, key, paths, features, meta, write=True):
        """Store fp16 features; return them as a later hit will (fp32 of the fp16 values), so a
        run gives the same numbers whether or not the cache was warm. ``write=False``: only the
        return value (another process of a torchrun group writes the entry)."""
        stored = features.to(torch.float16).contiguous()
        if write:
            entry = {"format": FORMAT, "key": key, "paths": list(paths), "features": stored, "meta": meta}
            torch_save(entry, self.entry_path(group, label, key))
        self.encoded += len(paths)
        return stored.float()

    @staticmethod
    def _read(path):
        if not os.path.isfile(path):
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated / corrupt file: never trust it
            print(f"Feature cache entry {path} is unreadable ({type(e).__name__}: {e}): re-encoding")
            return None

    @staticmethod
    def _matches(entry, key, paths):
        return (isinstance(entry, dict) and entry.get("format") == FORMAT and entry.get("key") == key
                and entry.get("paths") == list(paths) and torch.is_tensor(entry.get("features"))
                and entry["features"].shape[0] == len(paths))

    def summary(self):
        return (f"Feature cache: {self.hits} hit(s), {self.misses} miss(es), "
                f"{self.encoded:,} item(s) encoded ({self.directory})")
