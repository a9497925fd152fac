"""Stanford Cars: 196 models; class names put the year first (``2012 Tesla Model S Sedan``)."""
import os

from scipy.io import loadmat

from .base import DatasetBase
from .datum import Datum
from .registry import DATASET_REGISTRY
from .split_builders import split_trainval


def year_first(name):
    """``AM General Hummer SUV 2000`` -> ``2000 AM General Hummer SUV`` (CoOp's names)."""
    *words, year = name.split(" ")
    return " ".join([year] + words)


@DATASET_REGISTRY.register()
class StanfordCars(DatasetBase):
    folder = "stanford_cars"
    image_folder = ""  # split-file paths start with cars_train/ or cars_test/
    split_file = "split_zhou_StanfordCars.json"

    def build_split(self):
        """Devkit train annotations -> train/val (20% per class), labelled test set -> test."""
        meta = self.load_mat("devkit/cars_meta.mat")["class_names"][0]
        trainval = self.read_annotations("cars_train", "devkit/cars_train_annos.mat", meta)
        test = self.read_annotations("cars_test", "cars_test_annos_withlabels.mat", meta)
        train, val = split_trainval(trainval)
        return train, val, test

    def load_mat(self, relpath):
        path = os.path.join(self.dataset_dir, relpath)
        self.require_file(path, "StanfordCars annotation file")
        return loadmat(path)

    def read_annotations(self, image_folder, relpath, meta):
        items = []
        for anno in self.load_mat(relpath)["annotations"][0]:
            label = int(anno["class"][0, 0]) - 1
            items.append(Datum(impath=os.path.join(self.dataset_dir, image_folder, anno["fname"][0]),
                               label=label, classname=year_first(meta[label][0])))
        return items
