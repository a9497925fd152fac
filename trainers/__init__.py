"""Trainers, by layer: ``core/`` (the loop, config, registry, checkpoints, logging, evaluation),
``features/`` (open_clip, the feature cache, text encoding, sharding, the cached-feature base) and
one module per method trainer here, imported when its name is looked up (``core.registry``)."""
