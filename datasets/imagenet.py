"""ImageNet, plus what its test-only variants share: ``classnames.txt`` and wnid-folder trees.

As in CoOp: train = ``images/train/<wnid>/``, test = ``images/val/<wnid>/`` (ILSVRC val),
labels in sorted folder order, images in ``os.listdir`` order, K-shot train sampled as for
every dataset. (CoOp's ``preprocessed.pkl`` listing is neither read nor written: no pickle.)

Deliberate difference: CoOp validates on the test set (val = test). Here, when
NUM_SHOTS >= 1, val is min(K, 4) images per class drawn, after the train sample (so the
train list stays CoOp's), from the training images not in the K-shot list; searches then
never see test data. With NUM_SHOTS < 1, val = test as in CoOp, with a warning.
"""
import json
import os

from .base import DatasetBase, DatasetLayoutError
from .datum import Datum
from .fewshot import generate_fewshot
from .registry import DATASET_REGISTRY
from .split_builders import listdir_nohidden

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_200_wnids.json")) as _f:
    IMAGENET_200_WNIDS = json.load(_f)


class ImageNetFolders(DatasetBase):
    """Reads ``classnames.txt`` and folder-per-wnid image trees under the dataset folder."""

    @classmethod
    def required_paths(cls):
        return super().required_paths() + [(os.path.join(cls.folder, "classnames.txt"), "class names file")]

    def read_classnames(self):
        """wnid -> class name, in file order, from ``<wnid> <class name words>`` lines."""
        return dict(self.parse_annotation("classnames.txt", lambda line: line.partition(" ")[::2]))

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
            for name in listdir_nohidden(os.path.join(image_dir, folder))
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

    def sample_fewshot_val(self, train, val, num_shots, fewshot_train):
        """min(K, 4) per class from the training images left out of the K-shot list."""
        taken = {item.impath for item in fewshot_train}
        return generate_fewshot([item for item in train if item.impath not in taken], min(num_shots, 4))


class TestOnlyImageNet(ImageNetFolders):
    """An ImageNet test set with its own ``classnames.txt``: train_x = test = every image, no val."""

    test_only = True

    def load_splits(self):
        data = self.read_data(self.read_classnames())
        return data, None, data

    def read_data(self, classnames):
        return self.read_class_folders(self.image_dir, classnames)


class ImageNet200(TestOnlyImageNet):
    """ImageNet-A / -R: their class folders must be among the published 200 wnids
    (``imagenet_200_wnids.json``); a foreign folder is an error, a missing one a warning."""

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
