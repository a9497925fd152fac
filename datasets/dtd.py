"""DescribableTextures (DTD), and the base of every dataset stored as one folder per class."""
from .base import DatasetBase
from .registry import DATASET_REGISTRY
from .split_builders import read_and_split_data


class ClassFolderDataset(DatasetBase):
    """Images in ``image_folder/<class folder>/``; a missing split file is rebuilt per class
    50% train / 20% val / 30% test (CoOp's ``read_and_split_data``)."""

    ignored = ()  # folders that are not classes
    new_cnames = None  # folder name -> class name, where CoOp renames

    def build_split(self):
        self.require_dir(self.image_dir, what=f"{type(self).__name__} image folder")
        return read_and_split_data(self.image_dir, ignored=self.ignored, new_cnames=self.new_cnames)


@DATASET_REGISTRY.register()
class DescribableTextures(ClassFolderDataset):
    """DTD: 47 texture classes; class names are the folder names."""

    folder = "dtd"
    image_folder = "images"
    split_file = "split_zhou_DescribableTextures.json"
