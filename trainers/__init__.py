"""Trainers: the registry and config, the training core, and one module per method.

Importing this package registers every trainer (``--trainer NAME``).
"""
from . import clip_adapter, cmm, coop, flex_clip, linear_probe, tip_adapter, zeroshot_clip  # noqa: F401
