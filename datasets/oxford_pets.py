"""Oxford-IIIT Pets: 37 breeds; the class name is the lower-cased breed part of the image name."""
import os

from .base import DatasetBase
from .datum import Datum
from .registry import DATASET_REGISTRY
from .split_builders import split_trainval


@DATASET_REGISTRY.register()
class OxfordPets(DatasetBase):
    folder = "oxford_pets"
    image_folder = "images"
    split_file = "split_zhou_OxfordPets.json"

    def build_split(self):
        """Official trainval / test lists; 20% of trainval per class becomes val (CoOp)."""
        trainval = self.parse_annotation("annotations/trainval.txt", self.parse_line)
        test = self.parse_annotation("annotations/test.txt", self.parse_line)
        train, val = split_trainval(trainval)
        return train, val, test

    def parse_line(self, line):
        """``American_bulldog_100 2 2 1`` (image, class id from 1, species, breed id)."""
        imname, label, _species, _breed = line.split(" ")
        breed = imname.rpartition("_")[0].lower()
        return Datum(impath=os.path.join(self.image_dir, imname + ".jpg"), label=int(label) - 1, classname=breed)
