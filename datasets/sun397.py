"""SUN397: 397 scene classes; names are cleaned from the class paths (CoOp)."""
import os

from .base import DatasetBase
from .datum import Datum
from .registry import DATASET_REGISTRY
from .split_builders import split_trainval


def clean_name(class_path):
    """``a/apartment_building/outdoor`` -> ``outdoor apartment_building``: drop the letter
    folder and put qualifiers such as indoor / outdoor first."""
    return " ".join(class_path.split("/")[1:][::-1])


@DATASET_REGISTRY.register()
class SUN397(DatasetBase):
    folder = "sun397"
    image_folder = "SUN397"
    split_file = "split_zhou_SUN397.json"

    def build_split(self):
        """Labels in ``ClassName.txt`` order; partition 01 gives trainval (20% per class to val) and test."""
        class_paths = self.parse_annotation("ClassName.txt", lambda line: line[1:])  # drop the leading '/'
        cname2lab = {path: label for label, path in enumerate(class_paths)}

        def parse(line):
            imname = line[1:]  # drop the leading '/'
            class_path = os.path.dirname(imname)
            return Datum(impath=os.path.join(self.image_dir, imname), label=cname2lab[class_path],
                         classname=clean_name(class_path))

        trainval = self.parse_annotation("Training_01.txt", parse)
        test = self.parse_annotation("Testing_01.txt", parse)
        train, val = split_trainval(trainval)
        return train, val, test
