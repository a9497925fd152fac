"""Name -> class registries (Dassl's pattern): ``@DATASET_REGISTRY.register()`` on a class.

The generic ``Registry`` lives here because datasets sit at the bottom of the import graph;
``trainers.registry`` reuses it for trainers.
"""
import difflib


class Registry:
    """A case-sensitive map from a registered class name to the class."""

    def __init__(self, kind):
        self.kind = kind
        self._classes = {}

    def register(self, name=None):
        def decorator(cls):
            key = name or cls.__name__
            if key in self._classes:
                raise KeyError(f"{self.kind} {key!r} is registered twice")
            self._classes[key] = cls
            return cls

        return decorator

    def get(self, name):
        if name not in self._classes:
            close = difflib.get_close_matches(name, self._classes, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise KeyError(
                f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(sorted(self._classes))}"
            )
        return self._classes[name]

    def names(self):
        return sorted(self._classes)

    def classes(self):
        return [self._classes[n] for n in self.names()]

    def __contains__(self, name):
        return name in self._classes


DATASET_REGISTRY = Registry("dataset")


def build_dataset(cfg):
    """Instantiate the dataset named by ``cfg.DATASET.NAME``."""
    if not cfg.DATASET.NAME:
        raise ValueError("DATASET.NAME is empty: pass --dataset-config-file configs/datasets/<name>.yaml")
    return DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)
