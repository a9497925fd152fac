"""TRAINER_REGISTRY: ``--trainer NAME`` is the registered class name (as in Dassl). Each name's
module (one per method, in ``trainers/``) is imported on its first lookup (``common.registry``)."""
from common.registry import Registry

TRAINER_MODULES = {
    "CLAP": "clap",
    "ZSLP": "clap",
    "CLIPAdapter": "clip_adapter",
    "CMM": "cmm",
    "CoOp": "coop",
    "FLEXCLIP": "flex_clip",
    "GDA": "gda",
    "LinearProbe": "linear_probe",
    "LPPlusPlus": "lp_plus_plus",
    "TipAdapter": "tip_adapter",
    "TipAdapterF": "tip_adapter",
    "ZeroshotCLIP": "zeroshot_clip",
    "ZeroshotCLIP2": "zeroshot_clip",
}
TRAINER_REGISTRY = Registry("trainer", TRAINER_MODULES, package=lambda: __package__.rpartition(".")[0])


def build_trainer(cfg):
    """Instantiate the trainer named by ``cfg.TRAINER.NAME``."""
    if not cfg.TRAINER.NAME:
        raise ValueError("no trainer given: pass --trainer NAME (registered: "
                         f"{', '.join(TRAINER_REGISTRY.names())})")
    trainer_cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    print(f"Loading trainer: {cfg.TRAINER.NAME}")
    return trainer_cls(cfg)
