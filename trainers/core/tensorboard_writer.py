"""Dassl's TensorBoard scalars: a SummaryWriter on ``<OUTPUT_DIR>/tensorboard``, or none.

Scalars are an extra: with ``TRAIN.TENSORBOARD False`` or without the ``tensorboard`` package
the run goes on unchanged (the latter says so in one log line).
"""
import os

TENSORBOARD_DIR = "tensorboard"


def open_scalar_writer(cfg):
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``<OUTPUT_DIR>/tensorboard``; None when
    TRAIN.TENSORBOARD is off or tensorboard is not installed."""
    if not cfg.TRAIN.TENSORBOARD:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when scalars are on
    except ImportError as e:
        print(f"TensorBoard scalars are off: {e} (pip install tensorboard, or set TRAIN.TENSORBOARD False)")
        return None
    return SummaryWriter(log_dir=os.path.join(cfg.OUTPUT_DIR, TENSORBOARD_DIR))
