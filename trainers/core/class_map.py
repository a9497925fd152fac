"""Evaluating a model trained on one class list on another (ImageNet's 1000 -> ImageNet-A/R's
200 or ImageNet-V2/Sketch's 1000, base -> new classes): an index map built from class ids.

A class id is what identifies a class across datasets: the WordNet id (wnid) for the ImageNet
family, whose CLIP class names repeat ("missile" is label 657 and 744, "sunglasses" 836 and
837, and ImageNet-R holds n03773504, the first missile), and the class name for every other
dataset (and for Dassl's own datasets in plugin mode, which give no wnids). Checkpoints record
both; one saved before ids were recorded carries names only and is matched by name, which is
refused where an evaluated name is ambiguous (ImageNet-R's missile).
"""
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional, Tuple

import torch


class ClassMismatchError(ValueError):
    """The evaluation classes cannot be found among the classes the model was trained on."""


@dataclass(frozen=True)
class ClassList:
    """Classes in label order: ``names`` (what prompts say) and ``ids`` (what identifies them;
    None for a checkpoint saved before class ids were recorded)."""

    names: Tuple[str, ...]
    ids: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(self.names))
        if self.ids is not None:
            object.__setattr__(self, "ids", tuple(self.ids))
            if len(self.ids) != len(self.names):
                raise ClassMismatchError(f"{len(self.ids)} class ids for {len(self.names)} class names")

    def matched_by(self, other):
        """What matches these classes with ``other``'s: "id" when both sides have ids, else "name"
        (also when both sides' ids are their names, as outside ImageNet)."""
        if self.ids is None or other.ids is None or (self.ids == self.names and other.ids == other.names):
            return "name"
        return "id"

    def keys(self, other):
        """This list's keys for matching with ``other``: its ids or its names."""
        return self.ids if self.matched_by(other) == "id" else self.names

    def same_classes(self, other):
        """Whether ``other`` is these classes in this order (no remapping needed)."""
        return self.keys(other) == other.keys(self)

    def described(self, key):
        """``key`` with its class name, for messages (``'n03773504' (missile)``)."""
        if self.ids is None or self.ids == self.names or key not in self.ids:
            return repr(key)
        return f"{key!r} ({self.names[self.ids.index(key)]})"


def dataset_class_ids(dataset):
    """The class ids of a dataset's labels: ``dataset.class_ids`` where it defines them (the
    ImageNet family: wnids), else its class names (every other dataset, and Dassl's own)."""
    ids = getattr(dataset, "class_ids", None)
    return list(ids) if ids is not None else list(dataset.classnames)


def class_index_map(trained, evaluated):
    """``index[i]`` = position of evaluation class ``i`` among the ``trained`` classes (two
    ClassLists), matched by class id, or by name when the checkpoint predates class ids."""
    trained_keys, eval_keys, what = trained.keys(evaluated), evaluated.keys(trained), trained.matched_by(evaluated)
    positions = defaultdict(list)
    for i, key in enumerate(trained_keys):
        positions[key].append(i)
    missing = [key for key in eval_keys if key not in positions]
    if missing:
        shown = ", ".join(evaluated.described(key) for key in missing[:5])
        raise ClassMismatchError(f"{len(missing)} evaluation class {what}(s) were not trained on (the model has "
                                 f"{len(trained_keys)} classes), e.g. {shown}")
    ambiguous = list(dict.fromkeys(key for key in eval_keys if len(positions[key]) > 1))
    if ambiguous:
        shown = ", ".join(f"{key!r} (trained labels {positions[key]})" for key in ambiguous[:5])
        if what == "id":
            hint = " (a class id names one class: the checkpoint is damaged)"
        elif trained.ids is None:
            hint = ("; the checkpoint records class names only (saved before class ids were recorded): retrain the "
                    "model with this version, whose checkpoints record the class ids (ImageNet: wnids) that tell "
                    "such classes apart")
        else:  # ids that are the names: datasets without ids of their own
            hint = ("; these classes have no ids other than their names (e.g. Dassl's own ImageNet datasets in "
                    "plugin mode): train and evaluate with this repository's train.py, whose ImageNet datasets "
                    "give wnids")
        raise ClassMismatchError(f"class {what}(s) {shown} appear more than once among the trained classes{hint}")
    return torch.tensor([positions[key][0] for key in eval_keys], dtype=torch.long)
