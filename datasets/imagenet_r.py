"""ImageNet-R, test only: renditions of 200 ImageNet classes, labelled 0..199 in sorted wnid
order (an ImageNet model's per-class rows are selected by wnid: ``class_ids``)."""
from .imagenet import ImageNet200
from .registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetR(ImageNet200):
    folder = "imagenet-rendition"
    image_folder = "imagenet-r"
