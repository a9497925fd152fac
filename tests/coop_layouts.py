"""Tiny, valid copies of CoOp's dataset layouts, for tests.

``LAYOUTS[name](root, ...)`` writes under ``root`` the files that dataset class ``name`` reads:
a few 8x8 images per class under real-looking class names (so CoOp's name quirks show) and,
for datasets with a split file, either that file (``split_file=True``) or only the raw
annotations (so ``build_split`` runs). A written split file is cut by ``written_split_sizes``,
not CoOp's 50/20/30, so a test can tell a split that was read from one that was rebuilt.
"""
import json
import os
import random
import zlib

import numpy as np
from PIL import Image
from scipy.io import savemat

import datasets  # noqa: F401  (registers every dataset)
from datasets.registry import build_dataset
from trainers.core.config import get_cfg_default

PER_CLASS = 10  # images per class (trainval per class for the Pets-style datasets)
TEST_PER_CLASS = 3  # Pets-style datasets: official test images per class

# Real wnids in sorted order: stingray/goldfinch/robin are ImageNet-A classes, goldfish/great
# white shark/hammerhead ImageNet-R ones (datasets/imagenet_200_wnids.json).
IMAGENET_CLASSES = [("n01440764", "tench"), ("n01443537", "goldfish"), ("n01484850", "great white shark"),
                    ("n01491361", "tiger shark"), ("n01494475", "hammerhead"), ("n01498041", "stingray"),
                    ("n01531178", "goldfinch"), ("n01558993", "robin")]


def write_image(path):
    """An 8x8 RGB image whose colour depends on the path; format from the extension."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    colour = tuple(zlib.crc32(path.encode()).to_bytes(4, "little")[:3])
    Image.new("RGB", (8, 8), colour).save(path)
    return path


def written_split_sizes(n):
    """(train, val, test) per class in a split file written here: a fifth (at least 1) each
    to val and test, the rest to train, in file-name order."""
    n_val = n_test = max(1, n // 5)
    return n - n_val - n_test, n_val, n_test


def write_split_file(path, image_dir, classes):
    """CoOp's ``split_zhou_*.json`` for ``classes`` = [(classname, [abs image path, ...])] in label order."""
    split = {"train": [], "val": [], "test": []}
    for label, (classname, paths) in enumerate(classes):
        n_train, n_val, _ = written_split_sizes(len(paths))
        for key, part in (("train", paths[:n_train]), ("val", paths[n_train:n_train + n_val]),
                          ("test", paths[n_train + n_val:])):
            split[key] += [[os.path.relpath(p, image_dir), label, classname] for p in part]
    with open(path, "w") as f:
        json.dump(split, f)


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


# --- one folder per class -------------------------------------------------------------------
def class_folders(root, folder, image_folder, split_name, classes, split_file, counts=None, ext=".jpg"):
    """``classes``: [(folder name, CoOp class name or None when CoOp ignores the folder)]."""
    image_dir = os.path.join(root, folder, image_folder)
    counts = counts or [PER_CLASS] * len(classes)
    written = [(cname, [write_image(os.path.join(image_dir, name, f"{name}_{i:04d}{ext}")) for i in range(n)])
               for (name, cname), n in zip(classes, counts)]
    if split_file:
        kept = sorted((name, item) for (name, _), item in zip(classes, written) if item[0] is not None)
        write_split_file(os.path.join(root, folder, split_name), image_dir, [item for _, item in kept])


DTD_CLASSES = ["banded", "blotchy", "braided", "bubbly", "bumpy"]


def dtd(root, split_file=True, counts=(PER_CLASS,) * 3):
    classes = [(name, name) for name in DTD_CLASSES[:len(counts)]]
    class_folders(root, "dtd", "images", "split_zhou_DescribableTextures.json", classes, split_file, counts)


def eurosat(root, split_file=True):
    classes = [("AnnualCrop", "Annual Crop Land"), ("Forest", "Forest"), ("SeaLake", "Sea or Lake")]
    class_folders(root, "eurosat", "2750", "split_zhou_EuroSAT.json", classes, split_file)


def food101(root, split_file=True):
    classes = [(name, name) for name in ("apple_pie", "baby_back_ribs", "beignets")]
    class_folders(root, "food-101", "images", "split_zhou_Food101.json", classes, split_file)


CALTECH_CLASSES = [("BACKGROUND_Google", None), ("Faces", "face"), ("Faces_easy", None), ("Leopards", "leopard"),
                   ("accordion", "accordion"), ("airplanes", "airplane")]


def caltech101(root, split_file=True):
    class_folders(root, "caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json", CALTECH_CLASSES,
                  split_file)


# --- annotation files -----------------------------------------------------------------------
def oxford_pets(root, split_file=True):
    breeds = [("Abyssinian", 1), ("american_bulldog", 2), ("Egyptian_Mau", 1)]
    base, image_dir = os.path.join(root, "oxford_pets"), os.path.join(root, "oxford_pets", "images")
    names = {b: [f"{b}_{i + 1}" for i in range(PER_CLASS + TEST_PER_CLASS)] for b, _ in breeds}
    for b, _ in breeds:
        for name in names[b]:
            write_image(os.path.join(image_dir, name + ".jpg"))
    if split_file:
        write_split_file(os.path.join(base, "split_zhou_OxfordPets.json"), image_dir,
                         [(b.lower(), [os.path.join(image_dir, n + ".jpg") for n in names[b]]) for b, _ in breeds])
        return
    for file, part in (("trainval.txt", slice(0, PER_CLASS)), ("test.txt", slice(PER_CLASS, None))):
        write_lines(os.path.join(base, "annotations", file),
                    [f"{n} {label} {species} {label}" for label, (b, species) in enumerate(breeds, 1)
                     for n in names[b][part]])


FLOWER_NAMES = {"1": "pink primrose", "2": "hard-leaved pocket orchid", "3": "canterbury bells"}
FLOWER_LABELS = [3, 1, 2] * PER_CLASS  # image i+1 has FLOWER_LABELS[i]; first appearance 3, 1, 2


def oxford_flowers(root, split_file=True):
    base, image_dir = os.path.join(root, "oxford_flowers"), os.path.join(root, "oxford_flowers", "jpg")
    paths = [write_image(os.path.join(image_dir, f"image_{i + 1:05d}.jpg")) for i in range(len(FLOWER_LABELS))]
    if split_file:
        write_split_file(os.path.join(base, "split_zhou_OxfordFlowers.json"), image_dir,
                         [(FLOWER_NAMES[str(y)], [p for p, lab in zip(paths, FLOWER_LABELS) if lab == y])
                          for y in (1, 2, 3)])
        return
    savemat(os.path.join(base, "imagelabels.mat"), {"labels": np.array([FLOWER_LABELS], dtype=np.uint8)})
    with open(os.path.join(base, "cat_to_name.json"), "w") as f:
        json.dump(FLOWER_NAMES, f)


def fgvc_aircraft(root):
    """No split file exists: variants.txt and the official lists (train 4, val 2, test 3 per class)."""
    base = os.path.join(root, "fgvc_aircraft")
    variants = ["707-320", "A300B4", "Cessna 172"]
    write_lines(os.path.join(base, "variants.txt"), variants)
    image_id = iter(range(1000000, 2000000))
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        lines = [f"{next(image_id)} {v}" for _ in range(n) for v in variants]
        for line in lines:
            write_image(os.path.join(base, "images", line.split(" ")[0] + ".jpg"))
        write_lines(os.path.join(base, f"images_variant_{split}.txt"), lines)


CAR_NAMES = [  # (devkit name, CoOp name)
    ("AM General Hummer SUV 2000", "2000 AM General Hummer SUV"),
    ("Acura RL Sedan 2012", "2012 Acura RL Sedan"),
    ("BMW M3 Coupe 2012", "2012 BMW M3 Coupe"),
]


def stanford_cars(root, split_file=True):
    """Annotations interleave the classes, as the devkit's do; split-file paths start at the dataset folder."""
    base = os.path.join(root, "stanford_cars")
    n_classes = len(CAR_NAMES)
    parts = {folder: [(f"{i + 1:05d}.jpg", i % n_classes + 1) for i in range(n * n_classes)]
             for folder, n in (("cars_train", PER_CLASS), ("cars_test", TEST_PER_CLASS))}
    for folder, annos in parts.items():
        for fname, _ in annos:
            write_image(os.path.join(base, folder, fname))
    if split_file:
        write_split_file(os.path.join(base, "split_zhou_StanfordCars.json"), base,
                         [(coop_name, [os.path.join(base, folder, f) for folder, annos in parts.items()
                                       for f, c in annos if c == y]) for y, (_, coop_name) in enumerate(CAR_NAMES, 1)])
        return
    os.makedirs(os.path.join(base, "devkit"))
    savemat(os.path.join(base, "devkit", "cars_meta.mat"),
            {"class_names": np.array([[name for name, _ in CAR_NAMES]], dtype=object)})
    for folder, file in (("cars_train", "devkit/cars_train_annos.mat"),
                         ("cars_test", "cars_test_annos_withlabels.mat")):
        annos = np.array([parts[folder]], dtype=[("fname", object), ("class", object)])
        savemat(os.path.join(base, file), {"annotations": annos})


SUN_CLASSES = ["/a/abbey", "/a/apartment_building/outdoor", "/b/badlands"]


def sun397(root, split_file=True):
    base, image_dir = os.path.join(root, "sun397"), os.path.join(root, "sun397", "SUN397")
    names = {c: [f"{c}/sun_{i:04d}.jpg" for i in range(PER_CLASS + TEST_PER_CLASS)] for c in SUN_CLASSES}
    for c in SUN_CLASSES:
        for name in names[c]:
            write_image(image_dir + name)
    if split_file:
        cleaned = ["abbey", "outdoor apartment_building", "badlands"]
        write_split_file(os.path.join(base, "split_zhou_SUN397.json"), image_dir,
                         [(cname, [image_dir + n for n in names[c]]) for c, cname in zip(SUN_CLASSES, cleaned)])
        return
    write_lines(os.path.join(base, "ClassName.txt"), SUN_CLASSES)
    write_lines(os.path.join(base, "Training_01.txt"), [n for c in SUN_CLASSES for n in names[c][:PER_CLASS]])
    write_lines(os.path.join(base, "Testing_01.txt"), [n for c in SUN_CLASSES for n in names[c][PER_CLASS:]])


UCF_ACTIONS = [("ApplyEyeMakeup", "Apply_Eye_Makeup"), ("Archery", "Archery"), ("YoYo", "Yo_Yo")]


def ucf101(root, split_file=True):
    base, image_dir = os.path.join(root, "ucf101"), os.path.join(root, "ucf101", "UCF-101-midframes")
    videos = {a: [f"{a}/v_{a}_g{i + 1:02d}_c01.avi" for i in range(PER_CLASS + TEST_PER_CLASS)]
              for a, _ in UCF_ACTIONS}
    frames = {a: [write_image(os.path.join(image_dir, folder, os.path.basename(v).replace(".avi", ".jpg")))
                  for v in videos[a]] for a, folder in UCF_ACTIONS}
    if split_file:
        write_split_file(os.path.join(base, "split_zhou_UCF101.json"), image_dir,
                         [(folder, frames[a]) for a, folder in UCF_ACTIONS])
        return
    lists = os.path.join(base, "ucfTrainTestlist")
    write_lines(os.path.join(lists, "classInd.txt"), [f"{i} {a}" for i, (a, _) in enumerate(UCF_ACTIONS, 1)])
    write_lines(os.path.join(lists, "trainlist01.txt"),
                [f"{v} {i}" for i, (a, _) in enumerate(UCF_ACTIONS, 1) for v in videos[a][:PER_CLASS]])
    write_lines(os.path.join(lists, "testlist01.txt"), [v for a, _ in UCF_ACTIONS for v in videos[a][PER_CLASS:]])


# --- ImageNet and its variants ------------------------------------------------------------------
def wnid_tree(image_dir, wnids, n, pattern):
    for wnid in wnids:
        for i in range(n):
            write_image(os.path.join(image_dir, wnid, pattern.format(wnid=wnid, i=i)))


def imagenet(root, train_per_class=PER_CLASS, val_per_class=3, classes=IMAGENET_CLASSES[:3]):
    """Three classes by default; images are written in shuffled order so os.listdir order is not
    sorted order."""
    base = os.path.join(root, "imagenet")
    write_lines(os.path.join(base, "classnames.txt"), [f"{w} {name}" for w, name in classes])
    order = random.Random(0).sample(range(train_per_class), train_per_class)
    for wnid, _ in classes:
        for i in order:
            write_image(os.path.join(base, "images", "train", wnid, f"{wnid}_{i}.JPEG"))
    wnid_tree(os.path.join(base, "images", "val"), [w for w, _ in classes], val_per_class,
              "ILSVRC2012_val_{wnid}{i}.JPEG")


def imagenetv2(root):
    base = os.path.join(root, "imagenetv2")
    write_lines(os.path.join(base, "classnames.txt"), [f"{w} {name}" for w, name in IMAGENET_CLASSES[:3]])
    wnid_tree(os.path.join(base, "imagenetv2-matched-frequency-format-val"), ["0", "1", "2"], 2, "{i}abc.jpeg")


def imagenet_sketch(root):
    base = os.path.join(root, "imagenet-sketch")
    write_lines(os.path.join(base, "classnames.txt"), [f"{w} {name}" for w, name in IMAGENET_CLASSES])
    wnid_tree(os.path.join(base, "images"), [w for w, _ in IMAGENET_CLASSES[:3]], 2, "sketch_{i}.JPEG")


def two_hundred_class_variant(folder, image_folder, picked):
    """ImageNet-A / -R: a subset of the wnids (``picked`` indices), plus a README.txt beside them."""
    def write(root):
        base = os.path.join(root, folder)
        write_lines(os.path.join(base, "classnames.txt"), [f"{w} {name}" for w, name in IMAGENET_CLASSES])
        wnid_tree(os.path.join(base, image_folder), [IMAGENET_CLASSES[i][0] for i in picked], 2, "{i}.jpg")
        write_lines(os.path.join(base, image_folder, "README.txt"), ["not a class"])
    return write


LAYOUTS = {
    "OxfordPets": oxford_pets,
    "OxfordFlowers": oxford_flowers,
    "FGVCAircraft": fgvc_aircraft,
    "DescribableTextures": dtd,
    "EuroSAT": eurosat,
    "StanfordCars": stanford_cars,
    "Food101": food101,
    "SUN397": sun397,
    "Caltech101": caltech101,
    "UCF101": ucf101,
    "ImageNet": imagenet,
    "ImageNetV2": imagenetv2,
    "ImageNetSketch": imagenet_sketch,
    "ImageNetA": two_hundred_class_variant("imagenet-adversarial", "imagenet-a", picked=(5, 6, 7)),
    "ImageNetR": two_hundred_class_variant("imagenet-rendition", "imagenet-r", picked=(1, 2, 4)),
}


def reference_fewshot(items, num_shots):
    """The protocol, written out plainly: group by label in order of first appearance,
    ``random.sample(group, K)`` per label (the whole group when smaller), concatenate."""
    groups = {}
    for item in items:
        groups.setdefault(item[1], []).append(item)
    out = []
    for group in groups.values():
        out += random.sample(group, num_shots) if len(group) >= num_shots else group
    return out


def build(root, name, num_shots=-1, seed=1, subsample="all"):
    """``build_dataset`` as train.py runs it: config, then seeding, then the dataset."""
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    random.seed(seed)
    return build_dataset(cfg)


def as_tuples(items):
    return [(item.impath, item.label, item.classname) for item in items]
