"""Trainers: the registry and config, the training core, and one module per method.

Importing this package registers every trainer (``--trainer NAME``).
"""
from . import cmm, zeroshot_clip  # noqa: F401
