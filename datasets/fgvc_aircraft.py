"""FGVC-Aircraft: 100 aircraft variants; the official lists are the split (no split file)."""
import os

from .base import DatasetBase
from .datum import Datum
from .registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class FGVCAircraft(DatasetBase):
    folder = "fgvc_aircraft"
    image_folder = "images"

    def load_splits(self):
        """Labels in the order of ``variants.txt``; ``images_variant_<split>.txt`` lines are
        ``<image id> <variant name>`` (CoOp reads these files directly)."""
        cname2lab = {name: label for label, name in enumerate(self.parse_annotation("variants.txt", str))}

        def parse(line):
            imname, _, classname = line.partition(" ")
            return Datum(impath=os.path.join(self.image_dir, imname + ".jpg"), label=cname2lab[classname],
                         classname=classname)

        return tuple(self.parse_annotation(f"images_variant_{s}.txt", parse) for s in ("train", "val", "test"))
