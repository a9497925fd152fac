"""Datasets: the Dassl data model, CoOp's datasets (one module each) and the simulated benchmark.

Importing this package registers every dataset (``DATASET.NAME``).
"""
from . import (  # noqa: F401
    caltech101,
    dtd,
    eurosat,
    fgvc_aircraft,
    food101,
    imagenet,
    imagenet_a,
    imagenet_r,
    imagenet_sketch,
    imagenetv2,
    manifest,
    nus_wide,
    oxford_flowers,
    oxford_pets,
    pascal_sentence,
    simulated,
    simulated_pairs,
    stanford_cars,
    sun397,
    ucf101,
    wikipedia,
    xmedianet,
)
