"""ImageNet-A / -R: the shipped 200-class wnid lists, the folder check, and the 1000 -> 200 map
by class name agreeing with the map by wnid."""
import os

import pytest

from coop_layouts import IMAGENET_CLASSES, LAYOUTS, build, imagenet, write_image
from datasets.base import DatasetLayoutError
from datasets.imagenet import IMAGENET_200_WNIDS
from trainers.class_map import ClassMismatchError, class_index_map


@pytest.mark.parametrize("name", ["ImageNetA", "ImageNetR"])
def test_shipped_lists_are_200_sorted_unique_wnids(name):
    wnids = IMAGENET_200_WNIDS[name]
    assert len(wnids) == len(set(wnids)) == 200 and wnids == sorted(wnids)
    assert all(len(w) == 9 and w[0] == "n" and w[1:].isdigit() for w in wnids)


def test_the_two_lists_overlap_as_published():
    assert len(set(IMAGENET_200_WNIDS["ImageNetA"]) & set(IMAGENET_200_WNIDS["ImageNetR"])) == 86


@pytest.mark.parametrize("name, folder, image_folder",
                         [("ImageNetA", "imagenet-adversarial", "imagenet-a"),
                          ("ImageNetR", "imagenet-rendition", "imagenet-r")])
def test_a_folder_outside_the_200_classes_is_an_error(tmp_path, name, folder, image_folder):
    LAYOUTS[name](tmp_path)
    write_image(os.path.join(tmp_path, folder, image_folder, "n99999999", "0.jpg"))
    with pytest.raises(DatasetLayoutError, match=r"n99999999.*not among the 200"):
        build(tmp_path, name)


@pytest.mark.parametrize("name", ["ImageNetA", "ImageNetR"])
def test_map_by_class_name_equals_map_by_wnid(tmp_path, name, capsys):
    imagenet(tmp_path, train_per_class=2, val_per_class=1, classes=IMAGENET_CLASSES)
    LAYOUTS[name](tmp_path)
    full, variant = build(tmp_path, "ImageNet"), build(tmp_path, name)
    assert "folders; labels still follow the sorted folder names" in capsys.readouterr().out  # 3 of 200
    by_name = class_index_map(full.classnames, variant.classnames).tolist()
    wnid_of = {name: wnid for wnid, name in IMAGENET_CLASSES}
    imagenet_wnids = sorted(wnid for wnid, _ in IMAGENET_CLASSES)
    by_wnid = [imagenet_wnids.index(wnid_of[c]) for c in variant.classnames]
    assert by_name == by_wnid and len(by_name) == 3
    assert all(wnid_of[c] in IMAGENET_200_WNIDS[name] for c in variant.classnames)


def test_map_errors_name_the_problem():
    with pytest.raises(ClassMismatchError, match="were not trained on, e.g. \\['zebra'\\]"):
        class_index_map(["tench", "goldfish"], ["zebra"])
    with pytest.raises(ClassMismatchError, match="'crane' appears twice"):
        class_index_map(["crane", "crane"], ["crane"])
