"""Oxford Flowers 102: labels from ``imagelabels.mat``, names from ``cat_to_name.json``."""
import json
import os

from scipy.io import loadmat

from .base import DatasetBase
from .registry import DATASET_REGISTRY
from .split_builders import split_per_class


@DATASET_REGISTRY.register()
class OxfordFlowers(DatasetBase):
    folder = "oxford_flowers"
    image_folder = "jpg"
    split_file = "split_zhou_OxfordFlowers.json"

    def build_split(self):
        """Image ``i`` (from 1) is ``image_{i:05d}.jpg``; classes in order of first appearance
        in the label file, each split 50/20/30 (CoOp)."""
        labels_path = os.path.join(self.dataset_dir, "imagelabels.mat")
        names_path = os.path.join(self.dataset_dir, "cat_to_name.json")
        self.require_file(labels_path, "OxfordFlowers label file")
        self.require_file(names_path, "OxfordFlowers class-name file")
        by_label = {}
        for i, label in enumerate(loadmat(labels_path)["labels"][0]):
            by_label.setdefault(int(label), []).append(os.path.join(self.image_dir, f"image_{i + 1:05d}.jpg"))
        with open(names_path) as f:
            names = json.load(f)
        unnamed = [label for label in by_label if str(label) not in names]
        if unnamed:
            raise ValueError(f"{names_path} has no name for label(s) {unnamed}")
        return split_per_class(
            (label - 1, names[str(label)], paths, labels_path) for label, paths in by_label.items()
        )
