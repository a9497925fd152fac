"""Few-shot sampling and base/new class subsampling, bit-identical to Dassl / CoOp.

Sampling uses Python's global ``random`` exactly as Dassl's ``generate_fewshot_dataset``:
group by label in order of first appearance, ``random.sample(items, K)`` per label (all
items when a label has fewer than K), concatenate. CoOp samples train with K, then val
with min(K, 4), right after seeding. The sampled lists are cached as JSON of relative
paths (``split_fewshot/shot_{K}-seed_{S}.json``) instead of CoOp's pickle; the cache
records a digest of the split it was drawn from and is ignored when the split changed.
"""
import hashlib
import json
import math
import os
import random
from dataclasses import replace

from common.atomic_io import write_json

from .split_io import items_to_records, records_to_items

FEWSHOT_FORMAT = 1


def split_by_label(items):
    """Label -> items, labels in order of first appearance (a dict keeps insertion order)."""
    groups = {}
    for item in items:
        groups.setdefault(item.label, []).append(item)
    return groups


def generate_fewshot(items, num_shots):
    """Dassl's ``generate_fewshot_dataset`` (repeat=False) on one list of Datum."""
    if num_shots < 1:
        return items
    print(f"Creating a {num_shots}-shot dataset")
    sampled = []
    for group in split_by_label(items).values():
        sampled.extend(random.sample(group, num_shots) if len(group) >= num_shots else group)
    return sampled


def check_shots(items, num_shots):
    """Warn (Dassl keeps them whole) about classes with fewer than K items; fail if all are."""
    groups = split_by_label(items)
    short = {g[0].classname or str(label): len(g) for label, g in groups.items() if len(g) < num_shots}
    if groups and len(short) == len(groups):
        largest = max(len(g) for g in groups.values())
        raise ValueError(
            f"DATASET.NUM_SHOTS={num_shots} exceeds the training images of every class "
            f"(the largest class has {largest}); use NUM_SHOTS <= {largest}"
        )
    if short:
        listed = ", ".join(f"{name} ({n})" for name, n in list(short.items())[:10])
        more = f" and {len(short) - 10} more" if len(short) > 10 else ""
        print(f"Warning: {len(short)} class(es) have fewer than {num_shots} training images and are "
              f"kept whole, as in Dassl: {listed}{more}")


def split_digest(train, val, image_dir):
    """A digest of the lists a few-shot sample is drawn from, to detect a changed split."""
    payload = json.dumps([items_to_records(train, image_dir), items_to_records(val or [], image_dir)])
    return hashlib.sha1(payload.encode()).hexdigest()


def fewshot_cache_path(cache_dir, num_shots, seed):
    return os.path.join(cache_dir, f"shot_{num_shots}-seed_{seed}.json")


def read_fewshot_cache(path, digest, image_dir):
    """The cached (train, val), or None when absent, unreadable or drawn from another split."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            data = json.load(f)
        if data.get("format") != FEWSHOT_FORMAT or data.get("source_digest") != digest:
            print(f"Ignoring few-shot cache {path}: it was drawn from a different split; resampling")
            return None
        return records_to_items(data["train"], image_dir), records_to_items(data["val"], image_dir)
    except (ValueError, KeyError, TypeError) as e:
        print(f"Ignoring unreadable few-shot cache {path} ({e}); resampling")
        return None


def write_fewshot_cache(path, digest, num_shots, seed, train, val, image_dir):
    data = {
        "format": FEWSHOT_FORMAT,
        "num_shots": num_shots,
        "seed": seed,
        "source_digest": digest,
        "train": items_to_records(train, image_dir),
        "val": items_to_records(val, image_dir),
    }
    try:
        write_json(data, path, indent=None)
        print(f"Saving preprocessed few-shot data to {path}")
    except OSError as e:
        print(f"Warning: could not write the few-shot cache {path} ({e}); continuing without it")


def apply_fewshot(train, val, num_shots, seed, cache_dir, image_dir, sample_val):
    """Sample (or load) the K-shot train list and the validation list for this seed.

    ``sample_val(train, val, K, fewshot_train)`` draws the validation list; CoOp's rule is
    ``generate_fewshot(val, min(K, 4))``. ``cache_dir`` None disables the JSON cache.
    """
    if num_shots < 1:
        return train, val
    check_shots(train, num_shots)
    path = digest = None
    if cache_dir is not None:
        path = fewshot_cache_path(cache_dir, num_shots, seed)
        digest = split_digest(train, val, image_dir)
        cached = read_fewshot_cache(path, digest, image_dir)
        if cached is not None:
            print(f"Loading preprocessed few-shot data from {path}")
            return cached
    fewshot_train = generate_fewshot(train, num_shots)
    fewshot_val = sample_val(train, val, num_shots, fewshot_train)
    if path is not None:
        write_fewshot_cache(path, digest, num_shots, seed, fewshot_train, fewshot_val, image_dir)
    return fewshot_train, fewshot_val


def subsample_classes(*splits, subsample="all"):
    """CoOp's base/new split: base = the first ceil(n/2) labels of the first split, new = the
    rest; selected labels are renumbered from 0 in every split."""
    if subsample not in ("all", "base", "new"):
        raise ValueError(f"DATASET.SUBSAMPLE_CLASSES must be all, base or new, got {subsample!r}")
    if subsample == "all":
        return splits
    labels = sorted({item.label for item in splits[0]})
    m = math.ceil(len(labels) / 2)
    selected = labels[:m] if subsample == "base" else labels[m:]
    print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    relabel = {old: new for new, old in enumerate(selected)}
    return tuple(
        [replace(item, label=relabel[item.label]) for item in split if item.label in relabel]
        if split is not None
        else None
        for split in splits
    )
