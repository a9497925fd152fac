"""ImageNetV2 (matched frequency), test only: folder ``<n>`` holds class ``n``."""
import os

from .datum import Datum
from .imagenet import TestOnlyImageNet
from .registry import DATASET_REGISTRY
from .split_builders import list_images


@DATASET_REGISTRY.register()
class ImageNetV2(TestOnlyImageNet):
    folder = "imagenetv2"
    image_folder = "imagenetv2-matched-frequency-format-val"

    def read_data(self, classnames):
        """Label n = folder ``n``, named by line n of classnames.txt (one folder per line:
        the real file's 1000 lines give CoOp's ``range(1000)``); its wnid is line n's wnid."""
        self.folder_wnids = list(classnames)
        items = []
        for label, classname in enumerate(classnames.values()):
            class_dir = os.path.join(self.image_dir, str(label))
            self.require_dir(class_dir, what="ImageNetV2 class folder")
            items += [Datum(impath=os.path.join(class_dir, name), label=label, classname=classname)
                      for name in list_images(class_dir)]
        return items

    def wnid_of(self, item):
        """Folder ``n`` holds the class of line n of classnames.txt."""
        return self.folder_wnids[int(os.path.basename(os.path.dirname(item.impath)))]
