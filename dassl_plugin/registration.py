"""What plugin mode adds to Dassl: trainers, datasets and config nodes.

- Trainers: every feature-level trainer of ours (not CoOp: the checkout has its own, and our
  ``TRAINER.COOP`` node would replace CoOp's). A name CoOp's checkout registers itself
  (``ZeroshotCLIP``, ``ZeroshotCLIP2`` in trainers/zsclip.py) gets the suffix ``OC`` (open_clip),
  always, so a script's trainer name never depends on the import order.
- Datasets: our extra ones, the simulated benchmarks and the retrieval datasets; CoOp's 15
  classification datasets stay the checkout's own.
- Config: ``extend_cfg(cfg)`` adds our CLIP.*, FEATURES.* nodes, the dataset nodes and the nodes of
  the trainers registered here to Dassl's config.
"""
from dassl.data.datasets import DATASET_REGISTRY as DASSL_DATASETS
from dassl.engine import TRAINER_REGISTRY as DASSL_TRAINERS

from .adapter import dassl_trainer
from .core import ours

COOP_TRAINER_NAMES = ("ZeroshotCLIP", "ZeroshotCLIP2")  # registered by CoOp's trainers/zsclip.py
CLASH_SUFFIX = "OC"


def plugin_trainers():
    return [cls for cls in ours.trainers.core.registry.TRAINER_REGISTRY.classes() if cls.feature_level]


def plugin_datasets():
    """The simulated benchmarks (they serve their own features) and the paired retrieval datasets."""
    return [cls for cls in ours.datasets.registry.DATASET_REGISTRY.classes()
            if hasattr(cls, "feature_source") or getattr(cls, "task", "") == "retrieval"]


TRAINER_NAMES = {cls.__name__: cls.__name__ + CLASH_SUFFIX if cls.__name__ in COOP_TRAINER_NAMES else cls.__name__
                 for cls in plugin_trainers()}  # our name -> the name in Dassl's TRAINER_REGISTRY


def register():
    for cls in plugin_trainers():
        DASSL_TRAINERS.register(dassl_trainer(cls, TRAINER_NAMES[cls.__name__]))
    for cls in plugin_datasets():
        DASSL_DATASETS.register(cls)


def extend_cfg(cfg):
    """Our nodes on Dassl's config (the line added to CoOp's train.py calls it after CoOp's ``extend_cfg``)."""
    return ours.trainers.core.config.extend_cfg(cfg, trainers=[cls.__name__ for cls in plugin_trainers()])
