"""Evaluating a model trained on one class list (ImageNet's 1000) on another (ImageNet-A/R's
200, ImageNet-V2/Sketch's 1000): an index map built from class names."""
import torch


class ClassMismatchError(ValueError):
    """The evaluation classes cannot be found among the classes the model was trained on."""


def class_index_map(trained_names, eval_names):
    """``index[i]`` = position of evaluation class ``i`` among ``trained_names``."""
    position = {}
    for i, name in enumerate(trained_names):
        if name in position:
            raise ClassMismatchError(f"class name {name!r} appears twice among the trained classes")
        position[name] = i
    missing = [name for name in eval_names if name not in position]
    if missing:
        raise ClassMismatchError(f"{len(missing)} evaluation class(es) were not trained on, e.g. {missing[:5]}")
    return torch.tensor([position[name] for name in eval_names], dtype=torch.long)
