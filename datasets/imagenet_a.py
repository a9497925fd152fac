"""ImageNet-A, test only: 200 of the ImageNet classes, labelled 0..199 in sorted wnid order
(map ImageNet's 1000 labels by class name to evaluate a per-class model here)."""
from .imagenet import ImageNet200
from .registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetA(ImageNet200):
    folder = "imagenet-adversarial"
    image_folder = "imagenet-a"
