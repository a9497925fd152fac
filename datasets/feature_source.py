"""The interface between feature-level trainers and wherever frozen features come from.

A trainer that works on features (ZeroshotCLIP, Tip-Adapter, CMM, FLEX-CLIP, ...) asks a
``FeatureSource`` for image features of a list of Datum and for text features of class
prompts; it never learns whether they came from the CLIP backbone via the on-disk feature
cache (``trainers.features.clip_features``) or from the simulated benchmark (``datasets.simulated``).
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AugmentView:
    """The ``index``-th augmented view of every image: RandomResizedCrop(scale) + optional flip.

    View ``i`` of an image is a pure function of (image, ``index``, ``seed``), so the views
    form a fixed bank that every run and seed shares through the cache.
    """

    index: int
    scale: tuple = (0.5, 1.0)
    flip: bool = True
    seed: int = 0


def augment_views(num_views, scale=(0.5, 1.0), flip=True, seed=0):
    """The first ``num_views`` views of the bank."""
    return [AugmentView(index=v, scale=tuple(scale), flip=flip, seed=seed) for v in range(num_views)]


class FeatureSource(ABC):
    """Frozen image and text features; all tensors are float32 on the CPU, not normalised."""

    logit_scale = 100.0

    @abstractmethod
    def image_features(self, items, split, view=None):
        """``[N, d]`` features of ``items`` (a list of Datum), evaluation transform when
        ``view`` is None, else the given ``AugmentView``. ``split`` names the list (cache label)."""

    @abstractmethod
    def text_features(self, classnames, templates):
        """``[C, T, d]``: one embedding per class and template (``template.format(name)``)."""

    def augmented_image_features(self, items, split, num_views, scale=(0.5, 1.0), flip=True, seed=0):
        """``[V, N, d]``: ``num_views`` augmented views of every item (Tip-Adapter's cache keys)."""
        views = augment_views(num_views, scale, flip, seed)
        return torch.stack([self.image_features(items, split, view=view) for view in views])

    def pair_text_features(self, items, split):
        """``[N, d]`` features of the texts of image-text pairs (PairDatum), for retrieval."""
        raise TypeError(f"{type(self).__name__} has no paired texts: retrieval needs a paired dataset")

    def summary(self):
        """One line for the log: what produced the features."""
        return type(self).__name__

    @abstractmethod
    def identity(self):
        """A small JSON-able dict saying what this run's features are (a run folder's provenance
        records it): enough to tell whether two runs saw the same features."""
