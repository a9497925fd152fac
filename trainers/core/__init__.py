"""The run core, method-agnostic: config, registry, the Dassl-style loop, checkpoints, logging,
evaluation; it imports no trainer and no CLIP code (``features`` builds on it)."""
