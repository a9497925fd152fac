"""ImageNet, plus what its test-only variants share: ``classnames.txt`` and wnid-folder trees.

As in CoOp: train = ``images/train/<wnid>/``, test = ``images/val/<wnid>/`` (ILSVRC val),
labels in sorted folder order, images in ``os.listdir`` order, K-shot train sampled as for
every dataset. (CoOp's ``preprocessed.pkl`` listing is neither read nor written: no pickle.)

Deliberate difference: CoOp validates on the test set (val = test). Here, when
NUM_SHOTS >= 1, val is min(K, 4) images per class drawn, after the train sample (so the
train list stays CoOp's), from the training images not in the K-shot list; searches then
never see test data. With NUM_SHOTS < 1, val = test as in CoOp, with a warning.

``full_val`` (what the full_val / lpclip selection protocols search on; Tip-Adapter searched
ImageNet on its test set and CoOp's lpclip drew its val from it, which is never offered here):
FULL_VAL_PER_CLASS = 50 training images per class (50,000, the size of the ILSVRC val set the
original searched on), drawn with a fixed seed (FULL_VAL_SEED, not --seed) so that one feature
cache entry serves every run. It may hold a run's few-shot training images: the searches drop
those before reading it (``trainers.features.search.selection_features``).
"""
import json
import os
import random

from .base import DatasetBase, DatasetLayoutError
from .datum import Datum
from .fewshot import generate_fewshot, split_by_label
from .registry import DATASET_REGISTRY
from .split_builders import list_images, listdir_nohidden

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_200_wnids.json")) as _f:
    IMAGENET_200_WNIDS = json.load(_f)

FULL_VAL_PER_CLASS = 50  # ImageNet's stand-in for a full val split: as many per class as ILSVRC val has
FULL_VAL_SEED = 0  # fixed, independent of --seed: every run shares one held-out list (one cache entry)


class ImageNetFolders(DatasetBase):
    """Reads ``classnames.txt`` and folder-per-wnid image trees under the dataset folder."""

    @classmethod
    def required_paths(cls):
        return super().required_paths() + [(os.path.join(cls.folder, "classnames.txt"), "class names file")]

    def read_classnames(self):
        """wnid -> class name, in file order, from ``<wnid> <class name words>`` lines."""
        return dict(self.parse_annotation("classnames.txt", lambda line: line.partition(" ")[::2]))

    def set_splits(self, train, val, test):
        """Dassl's splits, plus ``class_ids``: the wnid of each label, in label order. CLIP's class
        names repeat ("missile", "sunglasses"), so a checkpoint's classes are matched by wnid."""
        super().set_splits(train, val, test)
        wnid_of = {item.label: self.wnid_of(item) for item in train}
        self.class_ids = [wnid_of[label] for label in sorted(wnid_of)]

    def wnid_of(self, item):
        """The wnid of an image's class: the name of its class folder."""
        return os.path.basename(os.path.dirname(item.impath))

    def read_class_folders(self, image_dir, classnames):
        """Items of ``image_dir/<wnid>/*``: label = index of the wnid among the sorted folders."""
        self.require_dir(image_dir, what=f"{type(self).__name__} image folder")
        folders = [f for f in listdir_nohidden(image_dir, sort=True) if os.path.isdir(os.path.join(image_dir, f))]
        unknown = [f for f in folders if f not in classnames]
        if unknown:
            raise ValueError(f"folder(s) {unknown[:5]} in {image_dir} are not listed in "
                             f"{os.path.join(self.dataset_dir, 'classnames.txt')}")
        return [
            Datum(impath=os.path.join(image_dir, folder, name), label=label, classname=classnames[folder])
            for label, folder in enumerate(folders)
            for name in list_images(os.path.join(image_dir, folder))
        ]


@DATASET_REGISTRY.register()
class ImageNet(ImageNetFolders):
    folder = "imagenet"
    image_folder = "images"

    @classmethod
    def required_paths(cls):
        images = os.path.join(cls.folder, cls.image_folder)
        return super().required_paths() + [(os.path.join(images, "train"), "training images"),
                                           (os.path.join(images, "val"), "validation images (the test set)")]

    def load_splits(self):
        classnames = self.read_classnames()
        train = self.read_class_folders(os.path.join(self.image_dir, "train"), classnames)
        test = self.read_class_folders(os.path.join(self.image_dir, "val"), classnames)
        return train, test, test

    def setup_splits(self, cfg, train, val, test):
        if cfg.DATASET.NUM_SHOTS < 1:
            print("Warning: ImageNet with all training images validates on its test set (ILSVRC val), "
                  "as CoOp does: anything searched or selected on val sees test data")
        super().setup_splits(cfg, train, val, test)

    def full_val_source(self, train, val):
        return held_out_images(train)

    def sample_fewshot_val(self, train, val, num_shots, fewshot_train):
        """min(K, 4) per class from the training images left out of the K-shot list."""
        taken = {item.impath for item in fewshot_train}
        return generate_fewshot([item for item in train if item.impath not in taken], min(num_shots, 4))


def held_out_images(train):
    """FULL_VAL_PER_CLASS training images per class (all of a smaller class), drawn by a private
    RNG seeded with FULL_VAL_SEED: the global RNG, and so the few-shot sample, is untouched."""
    rng = random.Random(FULL_VAL_SEED)
    return [item for group in split_by_label(train).values()
            for item in (rng.sample(group, FULL_VAL_PER_CLASS) if len(group) > FULL_VAL_PER_CLASS else group)]


class TestOnlyImageNet(ImageNetFolders):
    """An ImageNet test set with its own ``classnames.txt``: train_x = test = every image, no val.
    Models are trained on ImageNet and evaluated here with ``--eval-only --model-dir``; a trainer
    that fits on the training split refuses to train here (``TrainerBase.check_trains_on``)."""

    test_only = True
    source_dataset = "ImageNet"  # what to train on instead (named in the refusal)

    def load_splits(self):
        data = self.read_data(self.read_classnames())
        return data, None, data

    def read_data(self, classnames):
        return self.read_class_folders(self.image_dir, classnames)


class ImageNet200(TestOnlyImageNet):
    """ImageNet-A / -R: their class folders must be among the published 200 wnids
    (``imagenet_200_wnids.json``); a foreign folder is an error, a missing one a warning. Labels
    follow the sorted folders; an ImageNet model's rows are selected by wnid (``class_ids``)."""

    def read_data(self, classnames):
        expected = set(IMAGENET_200_WNIDS[type(self).__name__])
        self.require_dir(self.image_dir, what=f"{type(self).__name__} image folder")
        folders = {f for f in listdir_nohidden(self.image_dir) if os.path.isdir(os.path.join(self.image_dir, f))}
        foreign = sorted(folders - expected)
        if foreign:
            raise DatasetLayoutError(f"{self.image_dir} has folder(s) {foreign[:5]} that are not among the 200 "
                                     f"{type(self).__name__} classes")
        if len(folders) < len(expected):
            print(f"Warning: {self.image_dir} has {len(folders)} of the {len(expected)} "
                  f"{type(self).__name__} class folders; labels still follow the sorted folder names")
        return super().read_data(classnames)
