"""DATASET_REGISTRY: ``DATASET.NAME`` is the registered class name (as in Dassl). Each name's
module is imported on its first lookup (``common.registry``)."""
from common.registry import Registry

DATASET_MODULES = {
    "Caltech101": "caltech101",
    "DescribableTextures": "dtd",
    "EuroSAT": "eurosat",
    "FGVCAircraft": "fgvc_aircraft",
    "Food101": "food101",
    "ImageNet": "imagenet",
    "ImageNetA": "imagenet_a",
    "ImageNetR": "imagenet_r",
    "ImageNetSketch": "imagenet_sketch",
    "ImageNetV2": "imagenetv2",
    "ManifestPairs": "manifest",
    "NUSWIDE10k": "nus_wide",
    "OxfordFlowers": "oxford_flowers",
    "OxfordPets": "oxford_pets",
    "PascalSentence": "pascal_sentence",
    "Simulated": "simulated",
    "SimulatedShift": "simulated",
    "SimulatedPairs": "simulated_pairs",
    "StanfordCars": "stanford_cars",
    "SUN397": "sun397",
    "UCF101": "ucf101",
    "Wikipedia": "wikipedia",
    "XMediaNet": "xmedianet",
}
DATASET_REGISTRY = Registry("dataset", DATASET_MODULES, package=lambda: __package__)


def build_dataset(cfg):
    """Instantiate the dataset named by ``cfg.DATASET.NAME``."""
    if not cfg.DATASET.NAME:
        raise ValueError("DATASET.NAME is empty: pass --dataset-config-file configs/datasets/<name>.yaml")
    return DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)
