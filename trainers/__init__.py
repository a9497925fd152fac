"""Trainers: the registry and config, the training core, and one module per method.

Importing this package registers every trainer (``--trainer NAME``).
"""
from . import clap, clip_adapter, cmm, coop, flex_clip, gda, linear_probe, lp_plus_plus, tip_adapter, zeroshot_clip  # noqa: F401
