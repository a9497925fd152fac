"""ImageNet-Sketch, test only: sketches of the 1000 ImageNet classes in ``images/<wnid>/``."""
from .imagenet import TestOnlyImageNet
from .registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetSketch(TestOnlyImageNet):
    folder = "imagenet-sketch"
    image_folder = "images"
