"""Retrieval datasets: Wikipedia and Pascal Sentence read tiny copies of their real layouts, the
manifest reader reads its format and names the line of every bad input, and every reader gets a
source/target class split (written once, then read) and X-shot target lists drawn as in Dassl."""
import hashlib
import json
import math
import os
import random
from collections import Counter

import pytest

from coop_layouts import build
from datasets.base import DatasetLayoutError
from datasets.registry import build_dataset
from pair_layouts import (
    NUS_CLASSES,
    WIKI_CATEGORIES,
    manifest_folder,
    manifest_records,
    pascal_sentence,
    wikipedia,
    write_manifest,
)
from trainers.core.config import get_cfg_default

READERS = {
    "Wikipedia": wikipedia,
    "PascalSentence": pascal_sentence,
    "NUSWIDE10k": manifest_folder,
    "XMediaNet": lambda root: manifest_folder(root, folder="xmedianet"),
}


def uids(items):
    return [item.uid for item in items]


def per_label(items):
    return dict(Counter(item.label for item in items))


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f)


def check_pairs(classnames, pairs, expected):
    """Every pair: its text as written, an existing image, a label that names its class."""
    for item in pairs["train"] + pairs["test"]:
        assert item.text == expected[item.uid]
        assert os.path.isfile(item.impath)
        assert classnames[item.label] == item.classname
    assert len(pairs["train"]) + len(pairs["test"]) == len(expected)


# --- Wikipedia ------------------------------------------------------------------------------------
@pytest.mark.parametrize("flat_images", [False, True])
def test_wikipedia_reads_its_real_layout(tmp_path, flat_images):
    expected = wikipedia(tmp_path, flat_images=flat_images)
    dataset = build(tmp_path, "Wikipedia")
    classnames, pairs = dataset.load_pairs()
    assert classnames == dataset.classnames == WIKI_CATEGORIES
    check_pairs(classnames, pairs, expected)
    assert per_label(pairs["train"]) == {label: 3 for label in range(10)}
    assert per_label(pairs["test"]) == {label: 2 for label in range(10)}
    for item in pairs["train"] + pairs["test"]:  # the category number of the list gave the label
        assert f"of the {item.classname} period" in item.text
        folder = os.path.basename(os.path.dirname(item.impath))
        assert folder == ("images" if flat_images else item.classname)
    assert (dataset.source_labels, dataset.target_labels) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    assert (len(dataset.source_train), len(dataset.target_train), len(dataset.test)) == (15, 15, 10)


def wiki_line(base, list_name, number):
    with open(os.path.join(base, list_name)) as f:
        return f.read().splitlines()[number - 1]


def set_wiki_line(base, list_name, number, text):
    path = os.path.join(base, list_name)
    with open(path) as f:
        lines = f.read().splitlines()
    lines[number - 1] = text
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def break_wiki(base, case):
    """Break line 2 of the train list (or line 1 of the test list) in the way ``case`` names."""
    text_id, image_id, number = wiki_line(base, "trainset_txt_img_cat.list", 2).split("\t")
    category = WIKI_CATEGORIES[int(number) - 1]
    if case == "missing image":
        os.remove(os.path.join(base, "images", category, image_id + ".jpg"))
    elif case == "category 11":
        set_wiki_line(base, "trainset_txt_img_cat.list", 2, f"{text_id}\t{image_id}\t11")
    elif case == "missing text":
        os.remove(os.path.join(base, "texts", text_id + ".xml"))
    elif case == "no text element":
        with open(os.path.join(base, "texts", text_id + ".xml"), "w") as f:
            f.write('<document name="x"><imageset><image id="y"/></imageset><text>  </text></document>\n')
    elif case == "listed twice":
        set_wiki_line(base, "testset_txt_img_cat.list", 1, f"{text_id}\t{image_id}\t{number}")
    elif case == "two columns":
        set_wiki_line(base, "trainset_txt_img_cat.list", 2, f"{text_id}\t{image_id}")


@pytest.mark.parametrize("case, where, message", [
    ("missing image", "trainset_txt_img_cat.list, line 2", "image not found"),
    ("category 11", "trainset_txt_img_cat.list, line 2", "category '11' is not a number from 1 to 10"),
    ("missing text", "trainset_txt_img_cat.list, line 2", "text not found: .*xml"),
    ("no text element", "trainset_txt_img_cat.list, line 2", "no text in a <text> element"),
    ("listed twice", "testset_txt_img_cat.list, line 1", "listed twice \\(also in trainset_txt_img_cat.list\\)"),
    ("two columns", "trainset_txt_img_cat.list, line 2", "not enough values"),
])
def test_wikipedia_errors_name_the_list_file_and_line(tmp_path, case, where, message):
    wikipedia(tmp_path)
    break_wiki(os.path.join(tmp_path, "wikipedia_dataset"), case)
    with pytest.raises(ValueError, match=f"{where}: .*{message}"):
        build(tmp_path, "Wikipedia")


# --- Pascal Sentence ------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".txt", "txt"])
def test_pascal_sentence_reads_its_real_layout(tmp_path, suffix):
    expected = pascal_sentence(tmp_path, sentence_suffix=suffix)
    classnames, pairs = build(tmp_path, "PascalSentence").load_pairs()
    assert classnames == ["aeroplane", "dining table", "sheep", "tv monitor"]
    check_pairs(classnames, pairs, expected)
    assert per_label(pairs["train"]) == {label: 8 for label in range(4)}
    assert per_label(pairs["test"]) == {label: 2 for label in range(4)}
    for item in pairs["train"] + pairs["test"]:
        assert item.text.count(".") == 5 and "  " not in item.text  # five sentences, one space between
        assert item.uid.split("/")[0] == os.path.basename(os.path.dirname(item.impath))


def test_pascal_sentence_split_is_40_10_by_the_documented_rule_written_once_then_read(tmp_path):
    pascal_sentence(tmp_path, categories=["bird", "boat"], per_class=50)
    split_file = tmp_path / "pascal_sentence" / "pair_split.json"
    classnames, pairs = build(tmp_path, "PascalSentence").load_pairs()
    assert (per_label(pairs["train"]), per_label(pairs["test"])) == ({0: 40, 1: 40}, {0: 10, 1: 10})
    for label, category in enumerate(["bird", "boat"]):  # the 10 ids with the smallest SHA-1 digests
        ids = sorted((i.uid for i in pairs["train"] + pairs["test"] if i.label == label),
                     key=lambda uid: hashlib.sha1(uid.encode()).hexdigest())
        assert {i.uid for i in pairs["test"] if i.label == label} == set(ids[:10])
    written, stamp = read_json(split_file), split_file.stat().st_mtime_ns
    assert written == {"train": uids(pairs["train"]), "test": uids(pairs["test"])}
    _, again = build(tmp_path, "PascalSentence").load_pairs()
    assert (uids(again["train"]), split_file.stat().st_mtime_ns) == (written["train"], stamp)
    moved = written["train"].pop(0)
    write_json({"train": written["train"], "test": written["test"] + [moved]}, split_file)
    _, edited = build(tmp_path, "PascalSentence").load_pairs()
    assert moved in uids(edited["test"]) and moved not in uids(edited["train"])


def test_pascal_sentence_missing_sentence_file_is_named(tmp_path):
    pascal_sentence(tmp_path)
    os.remove(tmp_path / "pascal_sentence" / "sentence" / "sheep" / "2008_000203.txt")
    with pytest.raises(DatasetLayoutError, match="sentence file of .*2008_000203.jpg not found: .*sheep/2008_000203"):
        build(tmp_path, "PascalSentence")


# --- the manifest ---------------------------------------------------------------------------------
def test_manifest_reads_texts_classes_and_the_given_split(tmp_path):
    records = manifest_records(split=True)
    records[1]["id"] = 17  # an integer id is read as its decimal string
    expected = manifest_folder(tmp_path, records=records)
    classnames, pairs = build(tmp_path, "NUSWIDE10k").load_pairs()
    assert classnames == sorted(NUS_CLASSES)
    check_pairs(classnames, pairs, expected)
    assert uids(pairs["test"]) == [r["id"] for r in records if r["split"] == "test"]
    assert "17" in uids(pairs["train"])
    assert expected["animal_0000"] == "tags of animal_0000: sky  blue"  # a text file, read and stripped
    assert not (tmp_path / "nus_wide_10k" / "pair_split.json").exists()


def test_classes_txt_gives_the_label_order(tmp_path):
    order = NUS_CLASSES[::-1]
    manifest_folder(tmp_path, classes_file=order)
    dataset = build(tmp_path, "NUSWIDE10k")
    classnames, pairs = dataset.load_pairs()
    assert classnames == dataset.classnames == order
    assert all(item.label == order.index(item.classname) for item in pairs["train"] + pairs["test"])
    assert [dataset.classnames[label] for label in dataset.source_labels] == order[:3]


def test_manifest_without_split_writes_the_pair_split_once_and_honours_edits(tmp_path):
    manifest_folder(tmp_path)
    split_file = tmp_path / "nus_wide_10k" / "pair_split.json"
    _, pairs = build(tmp_path, "NUSWIDE10k").load_pairs()
    assert per_label(pairs["test"]) == {label: 2 for label in range(6)}  # 10 // 5 per class
    written, stamp = read_json(split_file), split_file.stat().st_mtime_ns
    _, again = build(tmp_path, "NUSWIDE10k").load_pairs()
    assert (uids(again["test"]), split_file.stat().st_mtime_ns) == (written["test"], stamp)
    moved = written["test"].pop()
    write_json({"train": written["train"] + [moved], "test": written["test"]}, split_file)
    _, edited = build(tmp_path, "NUSWIDE10k").load_pairs()
    assert moved in uids(edited["train"]) and len(edited["test"]) == 11
    write_json({"train": written["train"] + [moved, "ghost"], "test": written["test"]}, split_file)
    with pytest.raises(ValueError, match=f"pair split file {split_file} names unknown id\\(s\\) \\['ghost'\\]"):
        build(tmp_path, "NUSWIDE10k")


def patch(**changes):
    """A breaker that sets (or, for None, deletes) keys of manifest line 3."""
    def apply(records, base):
        for key, value in changes.items():
            records[2].pop(key) if value is None else records[2].update({key: value})
    return apply


def blank_text_file(records, base):
    with open(os.path.join(base, records[2]["text_file"]), "w") as f:
        f.write(" \n\n")


BAD_LINES = {  # case: (breaker of line 3, or the raw text of line 3; what the error says)
    "bad JSON": ('{"id": "x", "image": ', "not valid JSON"),
    "not an object": ('["x"]', "expected a JSON object"),
    "missing key": (patch(**{"class": None}), "missing key\\(s\\) \\['class'\\]"),
    "unknown key": (patch(txt="a sky"), "unknown key\\(s\\) \\['txt'\\]"),
    "both texts": (patch(text="a sky"), "give exactly one of 'text' and 'text_file'"),
    "neither text": (patch(text_file=None), "give exactly one of 'text' and 'text_file'"),
    "unknown split": (patch(split="val"), "'split' must be one of \\['train', 'test'\\], got 'val'"),
    "missing image": (patch(image="images/none.jpg"), "image 'images/none.jpg' not found"),
    "absolute image": (patch(image="/tmp/x.jpg"), "'image' must be relative to the dataset folder"),
    "empty text": (patch(text_file=None, text="  "), "empty text: 'text' is blank"),
    "empty text file": (blank_text_file, "empty text: text_file 'texts/flowers_0000.txt' is blank"),
    "missing text file": (patch(text_file="texts/none.txt"), "text_file 'texts/none.txt' not found"),
    "duplicate id": (patch(id="animal_0000"), "duplicate id 'animal_0000' \\(first on line 1\\)"),
    "id not a string": (patch(id=7.5), "'id' must be a non-empty string, got 7.5"),
}


@pytest.mark.parametrize("case", BAD_LINES)
def test_manifest_names_the_line_of_each_bad_input(tmp_path, case):
    records = manifest_records()
    manifest_folder(tmp_path, records=records)
    base = os.path.join(tmp_path, "nus_wide_10k")
    breaker, message = BAD_LINES[case]
    raw = {3: breaker} if isinstance(breaker, str) else breaker(records, base)
    write_manifest(base, records, raw)
    with pytest.raises(ValueError, match=f"{base}/manifest.jsonl, line 3: {message}"):
        build(tmp_path, "NUSWIDE10k")


def test_manifest_class_missing_from_classes_txt_names_the_manifest_line(tmp_path):
    records = manifest_records()
    records[4]["class"] = "zebra"
    manifest_folder(tmp_path, records=records, classes_file=NUS_CLASSES)
    with pytest.raises(ValueError, match="manifest.jsonl, line 5: class 'zebra' is not in .*classes.txt"):
        build(tmp_path, "NUSWIDE10k")


@pytest.mark.parametrize("classes, message", [
    (NUS_CLASSES[:2] + NUS_CLASSES[:1] + NUS_CLASSES[2:], "line 3: class 'animal' is listed twice \\(first on line 1"),
    (NUS_CLASSES[:1] + ["zebra"] + NUS_CLASSES[1:], "line 2: class 'zebra' has no pair in .*manifest.jsonl"),
])
def test_classes_txt_errors_name_its_line(tmp_path, classes, message):
    manifest_folder(tmp_path, classes_file=classes)
    with pytest.raises(ValueError, match=f"classes.txt, {message}"):
        build(tmp_path, "NUSWIDE10k")


def test_split_on_some_lines_only_names_the_first_line_without(tmp_path):
    records = manifest_records(split=True)
    del records[6]["split"]
    manifest_folder(tmp_path, records=records)
    with pytest.raises(ValueError, match="manifest.jsonl, line 7: no 'split', but other lines give one"):
        build(tmp_path, "NUSWIDE10k")


def test_generic_manifest_pairs_reads_the_configured_folder(tmp_path):
    expected = manifest_folder(tmp_path, folder="my_pairs")
    cfg = get_cfg_default()
    cfg.DATASET.ROOT, cfg.DATASET.NAME = str(tmp_path), "ManifestPairs"
    with pytest.raises(ValueError, match="needs DATASET.RETRIEVAL.MANIFEST_FOLDER"):
        build_dataset(cfg)
    cfg.DATASET.RETRIEVAL.MANIFEST_FOLDER = "my_pairs"
    dataset = build_dataset(cfg)
    check_pairs(dataset.classnames, dataset.load_pairs()[1], expected)
    assert os.path.isfile(tmp_path / "my_pairs" / "class_split.json")


# --- source / target classes and X-shot target lists, for every reader -------------------------------
@pytest.mark.parametrize("name", READERS)
def test_class_split_is_disjoint_written_once_then_read_and_edits_are_honoured(tmp_path, name):
    READERS[name](tmp_path)
    dataset = build(tmp_path, name)
    path = os.path.join(dataset.dataset_dir, "class_split.json")
    m = math.ceil(len(dataset.classnames) / 2)
    assert read_json(path) == {"source": dataset.classnames[:m], "target": dataset.classnames[m:]}
    source, target = set(dataset.source_labels), set(dataset.target_labels)
    assert not source & target and source | target == set(range(len(dataset.classnames)))
    assert {i.label for i in dataset.source_train} == source
    assert {i.label for i in dataset.target_train + dataset.test} == target
    stamp = os.stat(path).st_mtime_ns
    assert build(tmp_path, name).source_labels == dataset.source_labels and os.stat(path).st_mtime_ns == stamp
    swapped = {"source": dataset.classnames[m:], "target": dataset.classnames[:m]}
    write_json(swapped, path)
    edited = build(tmp_path, name)
    assert [edited.classnames[label] for label in edited.source_labels] == swapped["source"]
    assert {i.label for i in edited.test} == set(edited.target_labels) == source
    write_json({"source": swapped["source"] + ["unicorn"], "target": swapped["target"]}, path)
    with pytest.raises(ValueError, match=f"class split file {path} names unknown class\\(es\\) \\['unicorn'\\]"):
        build(tmp_path, name)


@pytest.mark.parametrize("name", READERS)
def test_xshot_target_lists_follow_the_seed_with_x_per_class_and_all_source_pairs(tmp_path, name):
    READERS[name](tmp_path)
    full = build(tmp_path, name, num_shots=-1)
    first, same, other = (build(tmp_path, name, num_shots=2, seed=seed) for seed in (1, 1, 2))
    assert uids(first.target_train) == uids(same.target_train) != uids(other.target_train)
    assert per_label(first.target_train) == {label: 2 for label in first.target_labels}
    assert set(uids(first.target_train)) <= set(uids(full.target_train))
    assert uids(first.source_train) == uids(other.source_train) == uids(full.source_train)
    assert uids(first.train_x) == uids(first.source_train) + uids(first.target_train)


@pytest.mark.parametrize("name", READERS)
@pytest.mark.parametrize("shots", [-1, 0, 1, 2])
def test_target_test_pairs_never_appear_in_train_x(tmp_path, name, shots):
    READERS[name](tmp_path)
    dataset = build(tmp_path, name, num_shots=shots)
    assert dataset.test and not set(uids(dataset.test)) & set(uids(dataset.train_x))
    images = {os.path.realpath(item.impath) for item in dataset.train_x}
    assert not images & {os.path.realpath(item.impath) for item in dataset.test}


@pytest.mark.parametrize("name", READERS)
def test_zero_shot_has_no_target_pair_and_too_many_shots_is_an_error(tmp_path, name):
    READERS[name](tmp_path)
    zero = build(tmp_path, name, num_shots=0)
    assert zero.target_train == [] and uids(zero.train_x) == uids(zero.source_train) != []
    with pytest.raises(ValueError, match="NUM_SHOTS=100 exceeds the training images of every class"):
        build(tmp_path, name, num_shots=100)


# --- the validation split -----------------------------------------------------------------------------
def build_with(root, name, num_shots, seed=1, val_shots=4):
    cfg = get_cfg_default()
    cfg.DATASET.ROOT, cfg.DATASET.NAME, cfg.DATASET.NUM_SHOTS, cfg.SEED = str(root), name, num_shots, seed
    cfg.DATASET.RETRIEVAL.VAL_SHOTS = val_shots
    random.seed(seed)
    return build_dataset(cfg)


def relevant_images(items):
    return {os.path.realpath(item.impath) for item in items}


@pytest.mark.parametrize("name", READERS)
@pytest.mark.parametrize("shots", [1, 2])  # the tiny layouts have 3 training pairs per class at most
def test_val_is_min_x_4_target_pairs_disjoint_from_test_and_from_training(tmp_path, name, shots):
    READERS[name](tmp_path)
    dataset = build_with(tmp_path, name, shots)
    pool = {label: [i for i in build_with(tmp_path, name, -1).target_train if i.label == label]
            for label in dataset.target_labels}
    expected = {label: min(shots, 4, len(pairs) - min(shots, len(pairs))) for label, pairs in pool.items()}
    assert per_label(dataset.val) == {label: n for label, n in expected.items() if n}
    assert set(uids(dataset.val)) <= {i.uid for pairs in pool.values() for i in pairs}  # target training pairs
    assert not set(uids(dataset.val)) & set(uids(dataset.test))
    assert not set(uids(dataset.val)) & set(uids(dataset.train_x))
    assert not relevant_images(dataset.val) & (relevant_images(dataset.test) | relevant_images(dataset.train_x))
    assert len(set(uids(dataset.val))) == len(dataset.val)


@pytest.mark.parametrize("name", READERS)
def test_val_follows_the_seed_and_leaves_the_xshot_lists_unchanged(tmp_path, name):
    READERS[name](tmp_path)
    first, same, other = (build_with(tmp_path, name, 1, seed=seed) for seed in (1, 1, 2))
    assert uids(first.val) == uids(same.val) != uids(other.val)
    without = build_with(tmp_path, name, 1, val_shots=0)
    assert without.val is None and uids(without.train_x) == uids(first.train_x)
    after_without = random.random()  # Python's random after the lists without a val split ...
    build_with(tmp_path, name, 1)
    assert random.random() == after_without  # ... is the same with one
    assert build_with(tmp_path, name, 0).val is None and build_with(tmp_path, name, -1).val is None


@pytest.mark.parametrize("shots, per_class", [(1, 1), (4, 4), (16, 4)])
def test_simulated_pairs_val_has_min_x_4_per_target_class(shots, per_class):
    dataset = build_with("", "SimulatedPairs", shots)
    assert per_label(dataset.val) == {label: per_class for label in dataset.target_labels}
    assert not set(uids(dataset.val)) & (set(uids(dataset.train_x)) | set(uids(dataset.test)))
