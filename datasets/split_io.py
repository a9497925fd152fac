"""Read and write CoOp split files: ``{"train"|"val"|"test": [[relpath, label, classname], ...]}``,
and the digests that say which split and which few-shot lists a run used.

Paths in the file are relative to the dataset's image folder; in memory they are absolute.
"""
import hashlib
import json
import os

from common.atomic_io import write_json
from common.hashing import file_sha256

from .datum import Datum

SPLITS = ("train", "val", "test")
ORIGINS = ("published", "rebuilt", "generated", "unknown")  # where a split comes from (see ``split_record``)


def items_to_records(items, image_dir):
    return [[os.path.relpath(item.impath, image_dir), item.label, item.classname] for item in items]


def records_to_items(records, image_dir):
    return [Datum(impath=os.path.join(image_dir, rel), label=int(label), classname=cname)
            for rel, label, cname in records]


def read_split(path, image_dir):
    """(train, val, test) lists of Datum from a ``split_zhou_*.json`` file."""
    print(f"Reading split from {path}")
    try:
        with open(path) as f:
            split = json.load(f)
    except ValueError as e:
        raise ValueError(f"split file {path} is not valid JSON: {e}") from e
    missing = [key for key in SPLITS if key not in split]
    if missing:
        raise ValueError(f"split file {path} lacks the key(s) {missing}; expected {list(SPLITS)}")
    try:
        return tuple(records_to_items(split[key], image_dir) for key in SPLITS)
    except (TypeError, ValueError) as e:
        raise ValueError(f"split file {path}: each entry must be [relpath, label, classname] ({e})") from e


def save_split(train, val, test, path, image_dir):
    split = {key: items_to_records(items, image_dir) for key, items in zip(SPLITS, (train, val, test))}
    write_json(split, path)
    print(f"Saved split to {path}")


def relative_path(impath, image_dir):
    """``impath`` relative to ``image_dir``; unchanged for data without a folder (simulated)."""
    return os.path.relpath(impath, image_dir) if image_dir else impath


def items_sha256(items, image_dir, with_classname=False):
    """SHA-256 of the ordered ``relpath<TAB>label[<TAB>classname]`` lines of ``items``: the same
    lists give the same digest on any machine and under any DATASET.ROOT."""
    digest = hashlib.sha256()
    for item in items or []:
        fields = [relative_path(item.impath, image_dir), str(item.label)]
        digest.update(("\t".join(fields + ([item.classname] if with_classname else [])) + "\n").encode())
    return digest.hexdigest()


def split_record(origin, source, train, val, test, image_dir):
    """What a run records about its split. ``origin``: ``published`` (CoOp's split_zhou file, or
    the dataset's official lists / folders), ``rebuilt`` (built here because the published file
    is missing), ``generated`` (the simulated benchmark) or ``unknown`` (a dataset of another code
    base, e.g. Dassl's in plugin mode, that does not say). ``source``: the split file read, or
    "" when the lists come from annotation files, folders or a generator; the digest is then
    over the (train, val, test) records instead of a file's bytes."""
    if origin not in ORIGINS:
        raise ValueError(f"split origin must be one of {ORIGINS}, got {origin!r}")
    if source:
        return {"origin": origin, "file": os.path.basename(source), "sha256": file_sha256(source), "hashed": "file"}
    digest = hashlib.sha256()
    for items in (train, val, test):
        digest.update(items_sha256(items, image_dir, with_classname=True).encode())
    return {"origin": origin, "file": None, "sha256": digest.hexdigest(), "hashed": "records"}
