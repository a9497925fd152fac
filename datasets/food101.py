"""Food-101: 101 dishes; class names are the folder names (e.g. ``apple_pie``)."""
from .dtd import ClassFolderDataset
from .registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Food101(ClassFolderDataset):
    folder = "food-101"
    image_folder = "images"
    split_file = "split_zhou_Food101.json"
