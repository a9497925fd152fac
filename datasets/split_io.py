"""Read and write CoOp split files: ``{"train"|"val"|"test": [[relpath, label, classname], ...]}``.

Paths in the file are relative to the dataset's image folder; in memory they are absolute.
"""
import json
import os

from .atomic_io import write_json
from .datum import Datum

SPLITS = ("train", "val", "test")


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
