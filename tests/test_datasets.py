"""CoOp's 15 datasets read tiny copies of their real layouts: class names (with CoOp's quirks),
labels, split sizes, rebuilt split files that follow CoOp's rule, ImageNet's validation list,
and errors that name the missing or malformed file."""
import json
import os
import random
import shutil

import pytest

from common.hashing import file_sha256
from coop_layouts import CALTECH_CLASSES, FLOWER_LABELS, IMAGENET_CLASSES, LAYOUTS, as_tuples, build, reference_fewshot
from datasets.base import DatasetBase, DatasetLayoutError
from datasets.registry import DATASET_REGISTRY
from trainers.core.config import get_cfg_default

FOLDER_STYLE = {"split": (18, 6, 6), "raw": (15, 6, 9)}  # 3 classes x 10: written split / CoOp's 50/20/30
PETS_STYLE = {"split": (27, 6, 6), "raw": (24, 6, 9)}  # 3 classes x (10 trainval + 3 test)
TEST_ONLY = {"official": (6, None, 6)}

# name -> (class names in label order, {mode: (train, val, test) sizes})
EXPECTED = {
    "OxfordPets": (["abyssinian", "american_bulldog", "egyptian_mau"], PETS_STYLE),
    "OxfordFlowers": (["pink primrose", "hard-leaved pocket orchid", "canterbury bells"], FOLDER_STYLE),
    "FGVCAircraft": (["707-320", "A300B4", "Cessna 172"], {"official": (12, 6, 9)}),
    "DescribableTextures": (["banded", "blotchy", "braided"], FOLDER_STYLE),
    "EuroSAT": (["Annual Crop Land", "Forest", "Sea or Lake"], FOLDER_STYLE),
    "StanfordCars": (["2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 BMW M3 Coupe"], PETS_STYLE),
    "Food101": (["apple_pie", "baby_back_ribs", "beignets"], FOLDER_STYLE),
    "SUN397": (["abbey", "outdoor apartment_building", "badlands"], PETS_STYLE),
    "Caltech101": (["face", "leopard", "accordion", "airplane"], {"split": (24, 8, 8), "raw": (20, 8, 12)}),
    "UCF101": (["Apply_Eye_Makeup", "Archery", "Yo_Yo"], PETS_STYLE),
    "ImageNet": (["tench", "goldfish", "great white shark"], {"official": (30, 9, 9)}),
    "ImageNetV2": (["tench", "goldfish", "great white shark"], TEST_ONLY),
    "ImageNetSketch": (["tench", "goldfish", "great white shark"], TEST_ONLY),
    "ImageNetA": (["stingray", "goldfinch", "robin"], TEST_ONLY),
    "ImageNetR": (["goldfish", "great white shark", "hammerhead"], TEST_ONLY),
}
CASES = [(name, mode) for name, (_, sizes) in EXPECTED.items() for mode in sizes]


def write(name, root, mode):
    """Write the layout; ``raw`` leaves out the split file so the dataset must build it."""
    if mode == "official":
        LAYOUTS[name](root)
    else:
        LAYOUTS[name](root, split_file=mode == "split")


def dataset_dir(root, name):
    return os.path.join(root, DATASET_REGISTRY.get(name).folder)


def test_every_dataset_is_registered_with_a_config():
    configs = os.path.join(os.path.dirname(__file__), "..", "configs", "datasets")
    names = set()
    for file in os.listdir(configs):
        cfg = get_cfg_default()
        cfg.merge_from_file(os.path.join(configs, file))
        names.add(cfg.DATASET.NAME)
    assert set(EXPECTED) | {"Simulated", "SimulatedShift"} <= names <= set(DATASET_REGISTRY.names())


@pytest.mark.parametrize("name, mode", CASES)
def test_reads_coop_layout(tmp_path, name, mode):
    write(name, tmp_path, mode)
    ds = build(tmp_path, name)
    classnames, sizes = EXPECTED[name]
    assert ds.classnames == classnames
    assert ds.lab2cname == dict(enumerate(classnames))
    assert ds.num_classes == len(classnames)
    splits = (ds.train_x, ds.val, ds.test)
    assert tuple(None if s is None else len(s) for s in splits) == sizes[mode]
    for split in filter(None, splits):
        assert {item.label for item in split} == set(range(len(classnames)))
        for item in split:
            assert item.classname == classnames[item.label]
            assert os.path.isabs(item.impath) and os.path.isfile(item.impath)
    if ds.test_only:
        assert ds.val is None and ds.train_x == ds.test


@pytest.mark.parametrize("name", [name for name, mode in CASES if mode == "raw"])
def test_built_split_file_is_saved_and_read_back(tmp_path, name):
    write(name, tmp_path, "raw")
    built = build(tmp_path, name, seed=1)
    split_path = built.rebuilt_split_path
    assert os.path.basename(split_path) == built.split_file.replace("split_zhou_", "split_rebuilt_")
    assert not os.path.exists(built.split_path)  # never under the published name
    assert built.split_provenance["origin"] == "rebuilt"
    with open(split_path) as f:
        saved = json.load(f)
    assert [len(saved[k]) for k in ("train", "val", "test")] == list(EXPECTED[name][1]["raw"])
    assert all(not os.path.isabs(rel) for records in saved.values() for rel, _, _ in records)
    again = build(tmp_path, name, seed=2)  # another seed: a rebuilt split would differ
    for a, b in ((built.train_x, again.train_x), (built.val, again.val), (built.test, again.test)):
        assert as_tuples(a) == as_tuples(b)


def cut_per_class(groups):
    """CoOp's rule for a missing split: per class shuffle, round(50%) train, round(20%) val, rest test."""
    out = {"train": [], "val": [], "test": []}
    for label, classname, paths in groups:
        random.shuffle(paths)
        n_train, n_val = round(len(paths) * 0.5), round(len(paths) * 0.2)
        for key, part in (("train", paths[:n_train]), ("val", paths[n_train:n_train + n_val]),
                          ("test", paths[n_train + n_val:])):
            out[key] += [(path, label, classname) for path in part]
    return out


def assert_splits(ds, expected):
    assert as_tuples(ds.train_x) == expected["train"]
    assert as_tuples(ds.val) == expected["val"]
    assert as_tuples(ds.test) == expected["test"]


@pytest.mark.parametrize("name, image_folder, names", [
    ("DescribableTextures", "images", {}),
    ("Caltech101", "101_ObjectCategories", dict(CALTECH_CLASSES)),
])
def test_class_folder_split_follows_coop_rule(tmp_path, name, image_folder, names):
    write(name, tmp_path, "raw")
    ds = build(tmp_path, name, seed=3)
    image_dir = os.path.join(dataset_dir(tmp_path, name), image_folder)
    folders = sorted(f for f in os.listdir(image_dir) if names.get(f, f) is not None)
    groups = []
    for label, folder in enumerate(folders):
        folder_dir = os.path.join(image_dir, folder)
        groups.append((label, names.get(folder, folder), [os.path.join(folder_dir, f) for f in os.listdir(folder_dir)]))
    random.seed(3)
    expected = cut_per_class(groups)
    assert_splits(ds, expected)


def test_flowers_split_follows_label_file_order(tmp_path):
    write("OxfordFlowers", tmp_path, "raw")
    ds = build(tmp_path, "OxfordFlowers", seed=2)
    image_dir = os.path.join(tmp_path, "oxford_flowers", "jpg")
    names = {1: "pink primrose", 2: "hard-leaved pocket orchid", 3: "canterbury bells"}
    random.seed(2)
    paths = [os.path.join(image_dir, f"image_{i + 1:05d}.jpg") for i in range(len(FLOWER_LABELS))]
    expected = cut_per_class(
        (y - 1, names[y], [path for path, label in zip(paths, FLOWER_LABELS) if label == y])
        for y in (3, 1, 2)  # order of first appearance in imagelabels.mat
    )
    assert_splits(ds, expected)


def test_trainval_split_follows_coop_rule(tmp_path):
    write("OxfordPets", tmp_path, "raw")
    ds = build(tmp_path, "OxfordPets", seed=2)
    base = os.path.join(tmp_path, "oxford_pets")

    def read(file):
        with open(os.path.join(base, "annotations", file)) as f:
            rows = [line.split() for line in f]
        return [(os.path.join(base, "images", name + ".jpg"), int(label) - 1, name.rsplit("_", 1)[0].lower())
                for name, label, *_ in rows]

    trainval = read("trainval.txt")
    random.seed(2)
    by_label = {}
    for i, row in enumerate(trainval):
        by_label.setdefault(row[1], []).append(i)
    expected = {"train": [], "val": [], "test": read("test.txt")}
    for idxs in by_label.values():
        n_val = round(len(idxs) * 0.2)
        random.shuffle(idxs)
        expected["val"] += [trainval[i] for i in idxs[:n_val]]
        expected["train"] += [trainval[i] for i in idxs[n_val:]]
    assert_splits(ds, expected)


# --- ImageNet's validation list -------------------------------------------------------------
def fail(*args, **kwargs):
    raise AssertionError("sampled again instead of reading the few-shot cache")


def test_imagenet_val_is_drawn_from_unused_train_images(tmp_path, monkeypatch):
    write("ImageNet", tmp_path, "official")
    ds = build(tmp_path, "ImageNet", num_shots=2, seed=1)
    train_dir = os.path.join(tmp_path, "imagenet", "images", "train")
    listing = [(os.path.join(train_dir, wnid, f), label, name)
               for label, (wnid, name) in enumerate(IMAGENET_CLASSES[:3])
               for f in os.listdir(os.path.join(train_dir, wnid))]
    random.seed(1)
    expected_train = reference_fewshot(listing, 2)  # what CoOp samples
    expected_val = reference_fewshot([item for item in listing if item not in expected_train], 2)
    assert as_tuples(ds.train_x) == expected_train
    assert as_tuples(ds.val) == expected_val
    assert len(ds.val) == 6 and not set(expected_train) & set(expected_val)
    assert len(ds.test) == 9 and all("/images/val/" in item.impath for item in ds.test)

    monkeypatch.setattr(random, "sample", fail)
    cached = build(tmp_path, "ImageNet", num_shots=2, seed=1)
    assert as_tuples(cached.train_x) == expected_train and as_tuples(cached.val) == expected_val


def test_imagenet_without_shots_validates_on_test_with_a_warning(tmp_path, capsys):
    write("ImageNet", tmp_path, "official")
    ds = build(tmp_path, "ImageNet", num_shots=-1)
    assert ds.val == ds.test
    assert "Warning" in capsys.readouterr().out


# --- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(EXPECTED))
def test_missing_dataset_folder(tmp_path, name):
    with pytest.raises(DatasetLayoutError, match="not found") as e:
        build(tmp_path, name)
    assert dataset_dir(tmp_path, name) in str(e.value)


@pytest.mark.parametrize("name, relpath", [
    ("OxfordPets", "annotations/trainval.txt"),
    ("OxfordPets", "annotations/test.txt"),
    ("OxfordFlowers", "imagelabels.mat"),
    ("OxfordFlowers", "cat_to_name.json"),
    ("FGVCAircraft", "variants.txt"),
    ("FGVCAircraft", "images_variant_test.txt"),
    ("DescribableTextures", "images"),
    ("StanfordCars", "devkit/cars_meta.mat"),
    ("StanfordCars", "cars_test_annos_withlabels.mat"),
    ("SUN397", "ClassName.txt"),
    ("UCF101", "ucfTrainTestlist/classInd.txt"),
    ("ImageNet", "classnames.txt"),
    ("ImageNet", "images/val"),
    ("ImageNetV2", "imagenetv2-matched-frequency-format-val/1"),
    ("ImageNetA", "classnames.txt"),
])
def test_missing_raw_file(tmp_path, name, relpath):
    mode = "raw" if "raw" in EXPECTED[name][1] else "official"
    write(name, tmp_path, mode)
    path = os.path.join(dataset_dir(tmp_path, name), relpath)
    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    with pytest.raises(DatasetLayoutError) as e:
        build(tmp_path, name)
    assert path in str(e.value)


def test_missing_split_file_that_cannot_be_rebuilt(tmp_path):
    class SplitFileOnly(DatasetBase):
        folder = "only_split"
        split_file = "split_zhou_Only.json"

    os.makedirs(tmp_path / "only_split")
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = str(tmp_path)
    with pytest.raises(DatasetLayoutError) as e:
        SplitFileOnly(cfg)
    assert str(tmp_path / "only_split" / "split_zhou_Only.json") in str(e.value)


def test_split_file_naming_a_missing_image(tmp_path):
    write("DescribableTextures", tmp_path, "split")
    missing = os.path.join(tmp_path, "dtd", "images", "blotchy", "blotchy_0003.jpg")
    os.remove(missing)
    with pytest.raises(DatasetLayoutError) as e:
        build(tmp_path, "DescribableTextures")
    assert missing in str(e.value)


def test_malformed_split_file(tmp_path):
    write("EuroSAT", tmp_path, "split")
    split_path = os.path.join(tmp_path, "eurosat", "split_zhou_EuroSAT.json")
    with open(split_path, "w") as f:
        f.write('{"train": [')
    with pytest.raises(ValueError) as e:
        build(tmp_path, "EuroSAT")
    assert split_path in str(e.value)


def test_malformed_annotation_line(tmp_path):
    write("OxfordPets", tmp_path, "raw")
    path = os.path.join(tmp_path, "oxford_pets", "annotations", "trainval.txt")
    with open(path, "a") as f:
        f.write("Abyssinian_99 1\n")
    with pytest.raises(ValueError, match="line 31") as e:
        build(tmp_path, "OxfordPets")
    assert path in str(e.value)


def test_rebuilt_split_is_logged_and_recorded_and_the_published_file_wins(tmp_path, capsys):
    write("DescribableTextures", tmp_path, "raw")
    rebuilt = build(tmp_path, "DescribableTextures")
    published_path = os.path.join(tmp_path, "dtd", "split_zhou_DescribableTextures.json")
    rebuilt_path = os.path.join(tmp_path, "dtd", "split_rebuilt_DescribableTextures.json")
    out = capsys.readouterr().out
    assert f"Published split file {published_path} not found" in out and f"saving it as {rebuilt_path}" in out
    assert rebuilt.split_provenance == {"origin": "rebuilt", "file": "split_rebuilt_DescribableTextures.json",
                                        "sha256": file_sha256(rebuilt_path), "hashed": "file"}
    again = build(tmp_path, "DescribableTextures")  # read back: still recorded as rebuilt, and said so
    assert again.split_provenance == rebuilt.split_provenance
    assert f"using the rebuilt split {rebuilt_path}" in capsys.readouterr().out
    write("DescribableTextures", tmp_path, "split")  # the published file arrives: it wins
    published = build(tmp_path, "DescribableTextures")
    assert published.split_provenance == {"origin": "published", "file": "split_zhou_DescribableTextures.json",
                                          "sha256": file_sha256(published_path), "hashed": "file"}
    assert [len(s) for s in (published.train_x, published.val, published.test)] == list(FOLDER_STYLE["split"])


def test_folder_datasets_record_a_digest_of_their_lists(tmp_path):
    """FGVCAircraft's official lists and ImageNet's folders are published splits without a split file."""
    for name in ("FGVCAircraft", "ImageNet"):
        write(name, tmp_path, "official")
        record = build(tmp_path, name).split_provenance
        assert (record["origin"], record["file"], record["hashed"]) == ("published", None, "records")
        assert record["sha256"] == build(tmp_path, name, seed=2).split_provenance["sha256"]  # not the few-shot draw


@pytest.mark.parametrize("name", ["DescribableTextures", "Caltech101"])
def test_a_non_image_file_in_a_class_folder_is_not_listed(tmp_path, capsys, name):
    write(name, tmp_path / "clean", "raw")
    expected = build(tmp_path / "clean", name)
    write(name, tmp_path / "noted", "raw")
    class_dir = os.path.join(dataset_dir(tmp_path / "noted", name), DATASET_REGISTRY.get(name).image_folder)
    notes = os.path.join(class_dir, os.path.basename(os.path.dirname(expected.train_x[0].impath)), "notes.txt")
    with open(notes, "w") as f:
        f.write("not an image")
    ds = build(tmp_path / "noted", name)
    assert "Skipping 1 non-image entry" in capsys.readouterr().out
    with open(ds.split_source) as f:
        assert "notes.txt" not in f.read()
    for got, want in ((ds.train_x, expected.train_x), (ds.val, expected.val), (ds.test, expected.test)):
        assert [os.path.relpath(i.impath, ds.image_dir) for i in got] == \
               [os.path.relpath(i.impath, expected.image_dir) for i in want]  # CoOp's draw, unchanged
    os.remove(notes)  # the saved split stays valid once the file is gone
    assert as_tuples(build(tmp_path / "noted", name).test) == as_tuples(ds.test)
