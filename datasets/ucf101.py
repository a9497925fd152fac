"""UCF101 (middle frames): 101 actions; CamelCase action names are split with '_' (CoOp)."""
import os
import re

from .base import DatasetBase
from .datum import Datum
from .registry import DATASET_REGISTRY
from .split_builders import split_trainval


def split_camel_case(action):
    """``ApplyEyeMakeup`` -> ``Apply_Eye_Makeup`` (also the image folder name)."""
    return "_".join(re.findall("[A-Z][^A-Z]*", action))


@DATASET_REGISTRY.register()
class UCF101(DatasetBase):
    folder = "ucf101"
    image_folder = "UCF-101-midframes"
    split_file = "split_zhou_UCF101.json"

    def build_split(self):
        """Official split 01: trainlist (20% per class to val) and testlist; one frame per video."""

        def parse_class(line):
            label, action = line.split(" ")
            return action, int(label) - 1

        cname2lab = dict(self.parse_annotation("ucfTrainTestlist/classInd.txt", parse_class))

        def parse(line):
            action, video = line.split(" ")[0].split("/")
            classname = split_camel_case(action)
            return Datum(impath=os.path.join(self.image_dir, classname, video.replace(".avi", ".jpg")),
                         label=cname2lab[action], classname=classname)

        trainval = self.parse_annotation("ucfTrainTestlist/trainlist01.txt", parse)
        test = self.parse_annotation("ucfTrainTestlist/testlist01.txt", parse)
        train, val = split_trainval(trainval)
        return train, val, test
