"""Datum and DatasetBase: the Dassl data model, with CoOp's split / few-shot / subsample flow.

A dataset class only says where its files are (``folder``, ``image_folder``, ``split_file``)
and how to build a split when the split file is missing (``build_split``). Reading the
split, few-shot sampling and base/new subsampling are shared here, so every dataset
behaves the same way and produces the same image lists as CoOp for the same seed.

A split built here never takes the published file's name: it is saved as
``split_rebuilt_<Name>.json`` beside where ``split_zhou_<Name>.json`` belongs, read only while
the published file is absent, and recorded as ``rebuilt`` in ``split_provenance`` (what each
run writes to its ``provenance.json``), so its runs are never taken for published-split runs.
"""
import os

from .datum import Datum  # noqa: F401  (re-exported: datasets.base.Datum, as in Dassl)
from .fewshot import apply_fewshot, generate_fewshot, subsample_classes
from .split_io import read_split, save_split, split_record

PUBLISHED_PREFIX, REBUILT_PREFIX = "split_zhou_", "split_rebuilt_"


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder, split file or image is missing; the message says which and where."""


class DatasetBase:
    """Holds ``train_x``, ``val`` and ``test`` lists of Datum plus the class names.

    Subclasses set the class attributes below and, when they can rebuild a missing split
    file from the raw annotations, implement ``build_split``.
    """

    folder = ""  # dataset folder under DATASET.ROOT (CoOp's ``dataset_dir``)
    image_folder = ""  # folder, relative to ``folder``, that split-file paths are relative to
    split_file = ""  # CoOp's split_zhou_<Name>.json, or "" when the dataset has none
    test_only = False  # ImageNet variants: no training data, no few-shot sampling
    split_origin = "published"  # "generated" for data made in memory; load_splits sets "rebuilt"
    split_source = ""  # the split file read ("" = official annotation files, folders, a generator)

    def __init__(self, cfg):
        root = cfg.DATASET.ROOT
        if not root:
            raise DatasetLayoutError("DATASET.ROOT is empty: pass --root /path/to/datasets")
        self.root = os.path.abspath(os.path.expanduser(root))
        self.dataset_dir = os.path.join(self.root, self.folder)
        self.image_dir = os.path.join(self.dataset_dir, self.image_folder)
        self.split_fewshot_dir = os.path.join(self.dataset_dir, "split_fewshot")
        self.require_dir(self.dataset_dir, what=f"{type(self).__name__} dataset folder")
        train, val, test = self.load_splits()
        self.setup_splits(cfg, train, val, test)
        self.check_images_exist()

    @classmethod
    def required_paths(cls):
        """``[(path relative to DATASET.ROOT, what it is)]`` that must exist before a run: what
        ``reproduce.sh`` checks up front (the run itself reports anything finer)."""
        paths = [(cls.folder, "dataset folder")]
        if cls.image_folder:
            paths.append((os.path.join(cls.folder, cls.image_folder), "image folder"))
        if cls.split_file:
            paths.append((os.path.join(cls.folder, cls.split_file), "split file"))
        return paths

    # --- split loading -------------------------------------------------------------
    @property
    def split_path(self):
        return os.path.join(self.dataset_dir, self.split_file)

    @property
    def rebuilt_split_path(self):
        """Where a split built from the raw annotations is saved: beside the published file,
        ``split_rebuilt_<Name>.json`` (CoOp would write it under the published name)."""
        return os.path.join(self.dataset_dir, REBUILT_PREFIX + self.split_file.removeprefix(PUBLISHED_PREFIX))

    def load_splits(self):
        """The published split file whenever it is there; otherwise the split rebuilt earlier, or
        a new one built from the raw annotations (CoOp's rule) and saved as the rebuilt file."""
        if os.path.exists(self.split_path):
            self.split_source = self.split_path
            return read_split(self.split_path, self.image_dir)
        rebuilt = self.rebuilt_split_path
        self.split_origin, self.split_source = "rebuilt", rebuilt
        if os.path.exists(rebuilt):
            print(f"Published split file {self.split_path} not found: using the rebuilt split {rebuilt} "
                  "(runs are recorded as 'rebuilt'; the published file takes over once it is there)")
            return read_split(rebuilt, self.image_dir)
        print(f"Published split file {self.split_path} not found: building a split from the raw annotations "
              f"and saving it as {rebuilt} (runs are recorded as 'rebuilt', never as the published split)")
        train, val, test = self.build_split()
        save_split(train, val, test, rebuilt, self.image_dir)
        return train, val, test

    def build_split(self):
        raise DatasetLayoutError(
            f"split file {self.split_path} is missing and {type(self).__name__} cannot rebuild it; "
            "download it from the CoOp DATASETS.md links"
        )

    def require_dir(self, path, what):
        if not os.path.isdir(path):
            raise DatasetLayoutError(
                f"{what} not found: {path} (expected the CoOp layout under DATASET.ROOT={self.root}; "
                "see README 'Datasets')"
            )

    def require_file(self, path, what):
        if not os.path.isfile(path):
            raise DatasetLayoutError(f"{what} not found: {path}")

    def parse_annotation(self, relpath, parse):
        """``[parse(line) ...]`` over the stripped, non-blank lines of a text file under the
        dataset folder; a missing file or a line that does not parse names the file (and line)."""
        path = os.path.join(self.dataset_dir, relpath)
        self.require_file(path, f"{type(self).__name__} annotation file")
        with open(path) as f:
            lines = [(n, line.strip()) for n, line in enumerate(f, 1)]
        items = []
        for n, line in lines:
            if line:
                try:
                    items.append(parse(line))
                except (ValueError, KeyError, IndexError) as e:
                    raise ValueError(f"{path}, line {n}: cannot parse {line!r} ({e!r})") from e
        return items

    # --- few-shot and subsampling ---------------------------------------------------
    def setup_splits(self, cfg, train, val, test):
        """Record the split (``split_provenance``), then few-shot sampling (train K, val
        min(K, 4)), then base/new subsampling."""
        self.split_provenance = split_record(self.split_origin, self.split_source, train, val, test,
                                             self.image_dir)
        full_val = self.full_val_source(train, val)
        if not self.test_only:
            train, val = apply_fewshot(
                train,
                val,
                num_shots=cfg.DATASET.NUM_SHOTS,
                seed=cfg.SEED,
                cache_dir=self.fewshot_cache_dir(),
                image_dir=self.image_dir,
                sample_val=self.sample_fewshot_val,
            )
        train, val, test, self.full_val = subsample_classes(train, val, test, full_val,
                                                            subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        self.set_splits(train, val, test)

    def full_val_source(self, train, val):
        """The val list before few-shot sampling (``full_val``: what the full_val / lpclip selection
        protocols read); ImageNet, whose val is its test set, holds out training images instead."""
        return val

    def sample_fewshot_val(self, train, val, num_shots, fewshot_train):
        """CoOp: the validation set is sampled like train, with min(K, 4) shots."""
        return generate_fewshot(val, num_shots=min(num_shots, 4))

    def fewshot_cache_dir(self):
        return self.split_fewshot_dir

    def set_splits(self, train, val, test):
        self.train_x = train
        self.train_u = None
        self.val = val
        self.test = test
        self.lab2cname, self.classnames = lab2cname_of(train)
        self.num_classes = max(item.label for item in train) + 1

    def check_images_exist(self):
        """Fail early, naming the files, when the split refers to images that are not there."""
        seen = {}
        for split in ("train_x", "val", "test"):
            for item in getattr(self, split) or []:
                seen.setdefault(item.impath, split)
        missing = [path for path in seen if not os.path.isfile(path)]
        if missing:
            shown = "\n  ".join(missing[:5])
            hint = (f"\nThe split was rebuilt into {self.split_source}: delete that file to rebuild it from the "
                    "images present" if self.split_origin == "rebuilt" else "")
            raise DatasetLayoutError(
                f"{len(missing)} image(s) listed for {type(self).__name__} are missing, e.g.:\n  {shown}{hint}"
            )


def lab2cname_of(items):
    """Label -> class name map and the class names in label order (Dassl)."""
    mapping = {item.label: item.classname for item in items}
    labels = sorted(mapping)
    return mapping, [mapping[label] for label in labels]
