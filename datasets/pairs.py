"""Paired image-text data for few-shot cross-modal retrieval (FLEX-CLIP's task).

Classes are split into *source* classes (all their training pairs are used) and disjoint
*target* classes, of which only X pairs per class are seen in training (``DATASET.NUM_SHOTS``;
0 = zero-shot, -1 = all). Retrieval is evaluated on the target classes' test pairs. The class
split is written to ``class_split.json`` in the dataset folder the first time (default: the
first half of the classes in label order are source, the rest target) and read afterwards, so
every run and every method uses the same split. X-shot lists come from the same seeded
sampler as classification (``generate_fewshot``: Python's ``random`` after seeding).

The validation split (``val``; FLEX-CLIP's paper has none) mirrors CoOp's few-shot val: min(X, 4)
pairs per *target* class (``DATASET.RETRIEVAL.VAL_SHOTS`` = 4), drawn from the target classes'
training pairs that were not drawn as the X shots. So it is disjoint from the test pairs (another
split) and from everything training reads, and it asks what test asks (retrieval among target
classes). No source pairs: they are all training pairs, so they would score what was fitted.
It is drawn with its own generator seeded by ``(SEED, "retrieval-val")``, so the X-shot lists and
Python's ``random`` state after them are those of a run without a val split. X = 0 or -1, or a
target class with no pair left over, gives no val pairs for that class (``val`` is None if none).
"""
import json
import math
import os
import random
from dataclasses import dataclass

from common.atomic_io import write_json
from common.stable_seed import stable_seed

from .base import DatasetBase
from .fewshot import check_shots, generate_fewshot, split_by_label


@dataclass(frozen=True)
class PairDatum:
    """One image-text pair. ``uid`` identifies the pair (manifest id, file stem); ``text`` is the
    text itself. ``impath`` makes it usable wherever a Datum's image is read."""

    impath: str
    text: str
    label: int
    classname: str
    uid: str
    domain: int = 0


class RetrievalDatasetBase(DatasetBase):
    """Subclasses implement ``load_pairs() -> (classnames, {"train": [...], "test": [...]})``."""

    task = "retrieval"

    def __init__(self, cfg):
        if not cfg.DATASET.ROOT:
            raise FileNotFoundError("DATASET.ROOT is empty: pass --root /path/to/datasets")
        self.root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = os.path.join(self.root, self.folder)
        self.image_dir = os.path.join(self.dataset_dir, self.image_folder)
        self.require_dir(self.dataset_dir, what=f"{type(self).__name__} dataset folder")
        classnames, pairs = self.load_pairs()
        self.setup_pairs(cfg, classnames, pairs)

    def load_pairs(self):
        raise NotImplementedError

    def class_split_path(self, cfg):
        return cfg.DATASET.RETRIEVAL.CLASS_SPLIT_FILE or os.path.join(self.dataset_dir, "class_split.json")

    def setup_pairs(self, cfg, classnames, pairs):
        """Source / target split, X-shot target sampling, and the lists training may read."""
        source_names, target_names = self.class_split(cfg, classnames)
        index = {name: label for label, name in enumerate(classnames)}
        self.source_labels = [index[n] for n in source_names]
        self.target_labels = [index[n] for n in target_names]
        source, target = set(self.source_labels), set(self.target_labels)
        self.source_train = [p for p in pairs["train"] if p.label in source]
        target_pool = [p for p in pairs["train"] if p.label in target]
        shots = cfg.DATASET.NUM_SHOTS
        if shots > 0:
            check_shots(target_pool, shots)
            self.target_train = generate_fewshot(target_pool, shots)
        else:
            self.target_train = target_pool if shots < 0 else []
        self.test = [p for p in pairs["test"] if p.label in target]
        self.train_x = self.source_train + self.target_train  # everything training may read
        self.val = draw_val(target_pool, self.target_train, min(shots, cfg.DATASET.RETRIEVAL.VAL_SHOTS), cfg.SEED)
        self.train_u = None
        self.classnames = list(classnames)
        self.lab2cname = dict(enumerate(classnames))
        self.num_classes = len(classnames)
        print(f"{type(self).__name__}: {len(source)} source classes ({len(self.source_train):,} pairs), "
              f"{len(target)} target classes ({len(self.target_train):,} training pairs, "
              f"{len(self.val or []):,} val pairs, {len(self.test):,} test pairs)")
        if not self.test:
            raise ValueError(f"{type(self).__name__} has no test pairs of its target classes")

    def class_split(self, cfg, classnames):
        """(source names, target names): read from the split file, or written there first."""
        path = self.class_split_path(cfg)
        if os.path.isfile(path):
            return read_class_split(path, classnames)
        source, target = default_class_split(classnames, cfg.DATASET.RETRIEVAL.SOURCE_FRACTION)
        write_json({"source": source, "target": target}, path)
        print(f"Saved the source/target class split to {path}")
        return source, target


def draw_val(target_pool, target_train, per_class, seed):
    """``per_class`` pairs per class of ``target_pool`` that ``target_train`` did not take, drawn
    by a generator of their own (module docstring); None when that leaves no pair."""
    if per_class < 1:
        return None
    taken = {id(p) for p in target_train}
    rng = random.Random(stable_seed(seed, "retrieval-val"))
    val = [p for group in split_by_label([p for p in target_pool if id(p) not in taken]).values()
           for p in rng.sample(group, min(per_class, len(group)))]
    return val or None


def default_class_split(classnames, source_fraction):
    """The first ceil(n * fraction) classes in label order are source, the rest target."""
    m = math.ceil(len(classnames) * source_fraction)
    source, target = list(classnames[:m]), list(classnames[m:])
    if not source or not target:
        raise ValueError(f"DATASET.RETRIEVAL.SOURCE_FRACTION={source_fraction} leaves no source or no target "
                         f"class among {len(classnames)}")
    return source, target


def read_json_lists(path, keys, what):
    """The lists under ``keys`` of a JSON split file; an error names the file otherwise."""
    try:
        with open(path) as f:
            data = json.load(f)
        return [list(data[key]) for key in keys]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{what} {path} must be JSON with {' and '.join(map(repr, keys))} lists ({e!r})") from e


def read_class_split(path, classnames):
    source, target = read_json_lists(path, ("source", "target"), "class split file")
    unknown = [n for n in source + target if n not in set(classnames)]
    if unknown:
        raise ValueError(f"class split file {path} names unknown class(es) {unknown[:5]}")
    if set(source) & set(target):
        raise ValueError(f"class split file {path}: {sorted(set(source) & set(target))[:5]} are both source and target")
    if not source or not target:
        raise ValueError(f"class split file {path} needs at least one source and one target class")
    return source, target
