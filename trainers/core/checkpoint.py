"""Checkpoints in Dassl's layout: ``<dir>/<model_name>/model.pth.tar-<epoch>`` plus a
``checkpoint`` file naming the latest one. Written atomically; read with ``weights_only=True``."""
import os

import torch

from common.atomic_io import atomic_path, torch_save

BEST_NAME = "model-best.pth.tar"


def checkpoint_name(epoch):
    return f"model.pth.tar-{epoch}"


def save_checkpoint(state, directory, model_name=""):
    """Save ``state`` (it holds ``epoch``, 1-based like Dassl) and point ``checkpoint`` at it."""
    name = model_name or checkpoint_name(state["epoch"])
    path = os.path.join(directory, name)
    torch_save(state, path)
    print(f"Checkpoint saved to {path}")
    if not model_name:
        with atomic_path(os.path.join(directory, "checkpoint")) as tmp:
            with open(tmp, "w") as f:
                f.write(name + "\n")
    return path


def load_checkpoint(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which
        raise RuntimeError(f"cannot read checkpoint {path}: {e}") from e


def latest_checkpoint(directory):
    """The file named by ``<directory>/checkpoint``, or None."""
    marker = os.path.join(directory, "checkpoint")
    if not os.path.isfile(marker):
        return None
    with open(marker) as f:
        name = f.read().strip()
    path = os.path.join(directory, name)
    return path if os.path.isfile(path) else None
