"""Pascal Sentence (Rashtchian et al., 2010): 1,000 PASCAL VOC 2008 images, 50 in each of 20
categories, each described by 5 crowd-sourced sentences; one pair = an image and its 5 sentences
joined with single spaces.

Layout (``pascal_sentence/``, as the common downloaders write it): ``dataset/<category>/<id>.jpg``
and ``sentence/<category>/<id>.txt``, one sentence per line (``<id>txt``, without the dot, as one
widely used downloader names them, is read too). Labels follow the sorted category folders; three
folder names are spelled as words for the class names. There is no official split: the pair split
file (``pair_split.json``, 40 train / 10 test per category) is written the first time, then read.
"""
import os

from .base import DatasetLayoutError
from .manifest import PAIR_SPLIT_FILE, split_pairs
from .pairs import PairDatum, RetrievalDatasetBase
from .registry import DATASET_REGISTRY
from .split_builders import list_images, listdir_nohidden

CLASSNAMES = {"diningtable": "dining table", "pottedplant": "potted plant", "tvmonitor": "tv monitor"}


@DATASET_REGISTRY.register()
class PascalSentence(RetrievalDatasetBase):
    folder = "pascal_sentence"
    image_folder = "dataset"
    sentence_folder = "sentence"

    def load_pairs(self):
        self.require_dir(self.image_dir, what="PascalSentence image folder")
        categories = [c for c in listdir_nohidden(self.image_dir, sort=True)
                      if os.path.isdir(os.path.join(self.image_dir, c))]
        items = [self.read_pair(label, category, file) for label, category in enumerate(categories)
                 for file in self.images_of(category)]
        return [CLASSNAMES.get(c, c) for c in categories], split_pairs(items, os.path.join(self.dataset_dir,
                                                                                            PAIR_SPLIT_FILE))

    def images_of(self, category):
        folder = os.path.join(self.image_dir, category)
        files = list_images(folder, sort=True)
        if not files:
            raise DatasetLayoutError(f"PascalSentence category folder {folder} has no image")
        return files

    def read_pair(self, label, category, file):
        stem = os.path.splitext(file)[0]
        folder = os.path.join(self.dataset_dir, self.sentence_folder, category)
        candidates = [os.path.join(folder, stem + ".txt"), os.path.join(folder, stem + "txt")]
        path = next((p for p in candidates if os.path.isfile(p)), None)
        if path is None:
            raise DatasetLayoutError(f"sentence file of {os.path.join(self.image_dir, category, file)} not found: "
                                     f"{candidates[0]}")
        with open(path, encoding="utf-8") as f:
            sentences = [line.strip() for line in f if line.strip()]
        if not sentences:
            raise ValueError(f"sentence file {path} is empty")
        return PairDatum(impath=os.path.join(self.image_dir, category, file), text=" ".join(sentences), label=label,
                         classname=CLASSNAMES.get(category, category), uid=f"{category}/{stem}")
