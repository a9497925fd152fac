"""ImageNet-A, test only: 200 of the ImageNet classes, labelled 0..199 in sorted wnid order
(an ImageNet model's per-class rows are selected by wnid: ``class_ids``)."""
from .imagenet import ImageNet200
from .registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNetA(ImageNet200):
    folder = "imagenet-adversarial"
    image_folder = "imagenet-a"
