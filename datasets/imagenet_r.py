"""ImageNet-R, test only: renditions of 200 ImageNet classes, labelled 0..199 in sorted wnid
order (map ImageNet's 1000 labels by class name to evaluate a per-class model here)."""
from .imagenet import ImageNet200
from .registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetR(ImageNet200):
    folder = "imagenet-rendition"
    image_folder = "imagenet-r"
