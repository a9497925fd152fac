"""TRAINER_REGISTRY: ``--trainer NAME`` is the registered class name (as in Dassl)."""
from datasets.registry import Registry

TRAINER_REGISTRY = Registry("trainer")


def build_trainer(cfg):
    """Instantiate the trainer named by ``cfg.TRAINER.NAME``."""
    if not cfg.TRAINER.NAME:
        raise ValueError("no trainer given: pass --trainer NAME (registered: "
                         f"{', '.join(TRAINER_REGISTRY.names())})")
    trainer_cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    print(f"Loading trainer: {cfg.TRAINER.NAME}")
    return trainer_cls(cfg)
