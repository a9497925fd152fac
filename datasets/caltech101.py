"""Caltech101: 100 object classes; CoOp drops the background and the duplicate face class
and singularises four folder names."""
from .dtd import ClassFolderDataset
from .registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Caltech101(ClassFolderDataset):
    folder = "caltech-101"
    image_folder = "101_ObjectCategories"
    split_file = "split_zhou_Caltech101.json"
    ignored = ("BACKGROUND_Google", "Faces_easy")
    new_cnames = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
