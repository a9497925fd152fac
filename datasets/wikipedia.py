"""Wikipedia (Rasiwasia et al., ACM MM 2010): 2,866 sections of Wikipedia featured articles, each
with one image, in 10 categories; the official lists split them into 2,173 train and 693 test pairs.

Layout (``wikipedia_dataset/``, as the original archive extracts): ``trainset_txt_img_cat.list`` and
``testset_txt_img_cat.list`` with lines ``<text id> <image id> <category number>`` (tab-separated,
categories 1..10 in the order of ``CATEGORIES``), ``texts/<text id>.xml`` and
``images/<category>/<image id>.jpg`` (``images/<image id>.jpg`` in flattened copies is read too).
"""
import html
import os
import re

from .pairs import PairDatum, RetrievalDatasetBase
from .registry import DATASET_REGISTRY

CATEGORIES = ("art", "biology", "geography", "history", "literature", "media", "music", "royalty", "sport", "warfare")
LISTS = {"train": "trainset_txt_img_cat.list", "test": "testset_txt_img_cat.list"}
TEXT_ELEMENT = re.compile(r"<text>(.*?)</text>", re.DOTALL)


def read_article(path):
    """The content of the ``<text>`` element(s) of ``texts/<id>.xml``, entities decoded, whitespace
    collapsed. A regex, not an XML parser: the files are not well-formed XML (bare ``&``, HTML
    entities such as ``&ndash;``), so parsers fail or drop text on many of them."""
    with open(path, encoding="utf-8", errors="replace") as f:
        parts = TEXT_ELEMENT.findall(f.read())
    return " ".join(html.unescape(" ".join(parts)).split())


@DATASET_REGISTRY.register()
class Wikipedia(RetrievalDatasetBase):
    folder = "wikipedia_dataset"
    image_folder = "images"

    def load_pairs(self):
        listed = {}  # text id -> list file, to reject a pair listed twice
        pairs = {split: self.parse_annotation(name, lambda line, name=name: self.read_pair(line, name, listed))
                 for split, name in LISTS.items()}
        return list(CATEGORIES), pairs

    def read_pair(self, line, list_name, listed):
        text_id, image_id, number = line.split()
        if not number.isdigit() or not 1 <= int(number) <= len(CATEGORIES):
            raise ValueError(f"category {number!r} is not a number from 1 to {len(CATEGORIES)}")
        if text_id in listed:
            raise ValueError(f"text id {text_id!r} is listed twice (also in {listed[text_id]})")
        listed[text_id] = list_name
        category = CATEGORIES[int(number) - 1]
        candidates = [os.path.join(self.image_dir, category, image_id + ".jpg"),
                      os.path.join(self.image_dir, image_id + ".jpg")]
        impath = next((path for path in candidates if os.path.isfile(path)), None)
        if impath is None:
            raise ValueError(f"image not found: {candidates[0]} (nor {candidates[1]})")
        text_path = os.path.join(self.dataset_dir, "texts", text_id + ".xml")
        if not os.path.isfile(text_path):
            raise ValueError(f"text not found: {text_path}")
        text = read_article(text_path)
        if not text:
            raise ValueError(f"no text in a <text> element of {text_path}")
        return PairDatum(impath=impath, text=text, label=int(number) - 1, classname=category, uid=text_id)
