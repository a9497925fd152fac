"""Plugin mode: this repository's trainers and extra datasets inside a Dassl.pytorch / CoOp checkout.

With this repository on PYTHONPATH, the one line added to CoOp's train.py (README, "Inside a
CoOp checkout"), in ``setup_cfg`` right after ``extend_cfg(cfg)``::

    import dassl_plugin; dassl_plugin.extend_cfg(cfg)

registers our feature-level trainers into Dassl's TRAINER_REGISTRY (``registration``) and adds
our config nodes; ``python train.py --trainer CMM ...`` then runs CMM on Dassl's DataManager.
"""
import importlib.util

if importlib.util.find_spec("dassl") is None:
    raise ImportError("dassl_plugin runs inside a Dassl.pytorch / CoOp checkout and needs the `dassl` package "
                      "(pip install -e Dassl.pytorch); without Dassl, use this repository's own train.py")

from .registration import TRAINER_NAMES, extend_cfg, register  # noqa: E402

register()

__all__ = ["TRAINER_NAMES", "extend_cfg"]
