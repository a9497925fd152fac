"""The manifest format for paired image-text data, and ``ManifestPairs``, its generic reader.

A dataset folder holds ``manifest.jsonl``: JSON Lines, one pair per non-blank line, an object
with exactly these keys (any other key is an error, so a misspelt key never goes unnoticed)::

    {"id": "0001", "image": "images/cat/0001.jpg", "text": "a cat on a mat", "class": "cat", "split": "train"}
    {"id": "0002", "image": "images/dog/0002.jpg", "text_file": "texts/0002.txt", "class": "dog"}

- ``id``: unique within the manifest (a string; an integer is read as its decimal string);
- ``image``: path relative to the dataset folder;
- exactly one of ``text`` (the text) and ``text_file`` (relative path of a UTF-8 text file);
  the text, stripped, must not be empty;
- ``class``: the class name;
- ``split`` (optional): ``"train"`` or ``"test"``, on every line or on none.

Optional ``classes.txt`` beside it: one class name per line, the label order (every class of
the manifest, each with at least one pair); without it the labels follow the sorted class names.
Without ``split``, the train/test split of the pairs comes from ``pair_split.json`` in the same
folder, written the first time by ``default_test_ids``' rule and read (and honoured when edited)
afterwards, as CoOp does with its split files. Errors name the file and line.
"""
import hashlib
import json
import os
from typing import NamedTuple

from common.atomic_io import write_json

from .fewshot import split_by_label
from .pairs import PairDatum, RetrievalDatasetBase, read_json_lists
from .registry import DATASET_REGISTRY

MANIFEST_FILE = "manifest.jsonl"
CLASSES_FILE = "classes.txt"
PAIR_SPLIT_FILE = "pair_split.json"
SPLITS = ("train", "test")
KEYS = ("id", "image", "text", "text_file", "class", "split")
TEST_EVERY = 5  # the default split puts one pair in five of each class in test (Pascal: 40 / 10)


class ManifestError(ValueError):
    """A manifest or classes.txt line is malformed or names something that is not there."""


class Record(NamedTuple):
    line: int
    uid: str
    image: str
    text: str
    classname: str
    split: str


# --- the pair split file (shared with the readers of datasets that ship without a split) ----------
def default_test_ids(items):
    """Per class, the ``n // 5`` pairs (at least 1 when the class has 2 or more) whose ids have the
    smallest SHA-1 digests go to test: deterministic, independent of the list order and of any seed."""
    test = set()
    for group in split_by_label(items).values():
        n_test = max(1, len(group) // TEST_EVERY) if len(group) > 1 else 0
        ranked = sorted(group, key=lambda item: hashlib.sha1(item.uid.encode()).hexdigest())
        test.update(item.uid for item in ranked[:n_test])
    return test


def read_pair_split(path, uids):
    """The test ids of a pair split file ``{"train": [id, ...], "test": [id, ...]}`` that lists
    every id of ``uids`` exactly once."""
    train, test = map(set, read_json_lists(path, ("train", "test"), "pair split file"))
    known = set(uids)
    for problem, ids in (("names unknown id(s)", (train | test) - known), ("puts id(s) in both lists", train & test),
                         ("lacks id(s)", known - train - test)):
        if ids:
            raise ValueError(f"pair split file {path} {problem} {sorted(ids)[:5]}; fix it, or delete it to rebuild it")
    return test


def split_pairs(items, path):
    """``{"train": [...], "test": [...]}`` by the pair split file ``path``: read when it exists,
    else built by ``default_test_ids`` and written there first. Items keep their order."""
    if os.path.isfile(path):
        print(f"Reading the train/test split of the pairs from {path}")
        test = read_pair_split(path, [item.uid for item in items])
    else:
        test = default_test_ids(items)
        write_json({key: [item.uid for item in items if (item.uid in test) == (key == "test")] for key in SPLITS},
                   path)
        print(f"Saved the train/test split of the pairs to {path}")
    return {"train": [item for item in items if item.uid not in test],
            "test": [item for item in items if item.uid in test]}


# --- one manifest line ------------------------------------------------------------------------
def string_field(record, key):
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{key}' must be a non-empty string, got {value!r}")
    return value


def existing_file(record, key, dataset_dir):
    relpath = string_field(record, key)
    if os.path.isabs(relpath):
        raise ValueError(f"'{key}' must be relative to the dataset folder, got {relpath!r}")
    path = os.path.join(dataset_dir, relpath)
    if not os.path.isfile(path):
        raise ValueError(f"{key} {relpath!r} not found ({path})")
    return path


def record_text(record, dataset_dir):
    if "text" in record:
        text, where = record["text"], "'text'"
        if not isinstance(text, str):
            raise ValueError(f"'text' must be a string, got {text!r}")
    else:
        path, where = existing_file(record, "text_file", dataset_dir), f"text_file {record['text_file']!r}"
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError as e:
            raise ValueError(f"{where} is not UTF-8 ({e})") from e
    if not text.strip():
        raise ValueError(f"empty text: {where} is blank")
    return text.strip()


def parse_record(line, number, dataset_dir):
    """A ``Record`` from one manifest line; ``ValueError`` says what is wrong with it."""
    try:
        record = json.loads(line)
    except ValueError as e:
        raise ValueError(f"not valid JSON ({e})") from e
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(KEYS))
    missing = [key for key in ("id", "image", "class") if key not in record]
    problems = [f"{what} {keys}" for what, keys in (("unknown key(s)", unknown), ("missing key(s)", missing)) if keys]
    if problems:
        raise ValueError(f"{', '.join(problems)}; the keys are {list(KEYS)}")
    if ("text" in record) == ("text_file" in record):
        raise ValueError("give exactly one of 'text' and 'text_file'")
    if record.get("split", "train") not in SPLITS:
        raise ValueError(f"'split' must be one of {list(SPLITS)}, got {record['split']!r}")
    if isinstance(record["id"], int) and not isinstance(record["id"], bool):
        record["id"] = str(record["id"])
    return Record(line=number, uid=string_field(record, "id"), image=existing_file(record, "image", dataset_dir),
                  text=record_text(record, dataset_dir), classname=string_field(record, "class").strip(),
                  split=record.get("split"))


def read_manifest(path, dataset_dir):
    """Every ``Record`` of a manifest, in file order; the first bad line raises ``ManifestError``."""
    records, seen = [], {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = parse_record(line, number, dataset_dir)
                if record.uid in seen:
                    raise ValueError(f"duplicate id {record.uid!r} (first on line {seen[record.uid]})")
            except ValueError as e:
                raise ManifestError(f"{path}, line {number}: {e}") from e
            seen[record.uid] = number
            records.append(record)
    if not records:
        raise ManifestError(f"{path} lists no pairs")
    return records


def read_classes(path, manifest, records):
    """Class names in label order: ``classes.txt`` at ``path`` when it exists, else sorted."""
    used = {record.classname for record in records}
    if not os.path.isfile(path):
        return sorted(used)
    with open(path, encoding="utf-8") as f:
        lines = [(number, line.strip()) for number, line in enumerate(f, 1) if line.strip()]
    names = {}
    for number, name in lines:
        if name in names:
            raise ManifestError(f"{path}, line {number}: class {name!r} is listed twice (first on line {names[name]})")
        names[name] = number
    for record in records:
        if record.classname not in names:
            raise ManifestError(f"{manifest}, line {record.line}: class {record.classname!r} is not in {path}")
    for name, number in names.items():
        if name not in used:
            raise ManifestError(f"{path}, line {number}: class {name!r} has no pair in {manifest}")
    return list(names)


@DATASET_REGISTRY.register()
class ManifestPairs(RetrievalDatasetBase):
    """Any image-text collection in the manifest format. Registered subclasses fix ``folder``;
    ``ManifestPairs`` itself reads the folder under DATASET.ROOT from DATASET.RETRIEVAL.MANIFEST_FOLDER."""

    folder = ""

    def __init__(self, cfg):
        if not self.folder:
            self.folder = cfg.DATASET.RETRIEVAL.MANIFEST_FOLDER
            if not self.folder:
                raise ValueError("DATASET.NAME ManifestPairs needs DATASET.RETRIEVAL.MANIFEST_FOLDER: the folder "
                                 f"under DATASET.ROOT that holds {MANIFEST_FILE}")
        super().__init__(cfg)

    def load_pairs(self):
        manifest = os.path.join(self.dataset_dir, MANIFEST_FILE)
        self.require_file(manifest, f"{type(self).__name__} manifest")
        records = read_manifest(manifest, self.dataset_dir)
        classnames = read_classes(os.path.join(self.dataset_dir, CLASSES_FILE), manifest, records)
        label = {name: index for index, name in enumerate(classnames)}
        items = [PairDatum(impath=r.image, text=r.text, label=label[r.classname], classname=r.classname, uid=r.uid)
                 for r in records]
        unsplit = [r for r in records if r.split is None]
        if len(unsplit) == len(records):
            return classnames, split_pairs(items, os.path.join(self.dataset_dir, PAIR_SPLIT_FILE))
        if unsplit:
            raise ManifestError(f"{manifest}, line {unsplit[0].line}: no 'split', but other lines give one; "
                                "give it on every line or on none")
        return classnames, {key: [item for item, r in zip(items, records) if r.split == key] for key in SPLITS}
