"""Hyper-parameter search on a validation split (never on test), and which split that is.

A trainer passes a scoring function that closes over validation data only; the search
walks the grid in order and keeps the first best (ties keep the earlier point, as
Tip-Adapter's search does), then logs the grid and the choice.

The split is the few-shot val split (the strict protocol, every trainer's default) or, for a
baseline whose original selected elsewhere, ``full_val``: the dataset's val split before
few-shot sampling (on ImageNet a held-out set of training images, ``datasets/imagenet.py``).
``selection_features`` serves either, and ``SPLIT_NAMES`` gives the names that a run's
``selection_protocol()`` records.
"""
import itertools

import torch

from .feature_trainer import LabeledFeatures

# trainer split -> the name recorded in selection_protocol() and printed in the log
SPLIT_NAMES = {"val": "fewshot_val", "full_val": "full_val"}
SPLIT_DESCRIPTIONS = {"val": "the few-shot val split", "full_val": "the full val split"}


def grid_search(grid, score, name="search", on="the few-shot val split"):
    """Best ``{param: value}`` of ``grid`` (``{param: [values]}``) under ``score(params)``,
    and its score. ``score`` must read validation data only (``on`` names it in the log)."""
    keys = list(grid)
    if not keys or any(len(grid[k]) == 0 for k in keys):
        raise ValueError(f"{name}: every searched parameter needs at least one value, got {grid}")
    best, best_score = None, float("-inf")
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        value = score(params)
        if value > best_score:
            best, best_score = params, value
    size = " x ".join(f"{len(grid[k])} {k}" for k in keys)
    chosen = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.items())
    print(f"{name} on {on} ({size}): best {chosen}, val accuracy {best_score:.2f}%")
    return best, best_score


def linspace_grid(low, high, steps):
    """Tip-Adapter's grid: ``steps`` values from ``low`` up to (not including) ``high``."""
    return [low + i * (high - low) / steps for i in range(steps)]


def selection_features(trainer, split):
    """The evaluation-transform features a search reads: ``val`` (few-shot) as it is, or
    ``full_val`` without the run's few-shot training images (only ImageNet's held-out set can
    hold some; a search scored on cache keys it contains would favour the cache)."""
    if split == "full_val" and not getattr(trainer.dataset, "full_val", None):
        raise ValueError(f"the full_val / lpclip selection protocols read the dataset's full val split, and "
                         f"{trainer.cfg.DATASET.NAME} has none here (a test-only set, or a dataset built by Dassl "
                         "in plugin mode); use PROTOCOL strict")
    data = trainer.split_features(split)
    if split != "full_val":
        return data
    taken = {item.impath for item in trainer.dataset.train_x}
    keep = torch.tensor([item.impath not in taken for item in trainer.split_items(split)], dtype=torch.bool)
    if not keep.any():
        raise ValueError(f"{trainer.cfg.DATASET.NAME}: every image of the full val split is a few-shot training "
                         "image (e.g. ImageNet with DATASET.NUM_SHOTS < 1): nothing is left to search on")
    if keep.all():
        return data
    print(f"full val split: {int((~keep).sum())} of {len(keep)} images are few-shot training images of this run "
          "and are left out of the search")
    return LabeledFeatures(data.features[keep], data.labels[keep])
