"""Name -> class registries (Dassl's pattern, ``@REGISTRY.register()`` on a class), lazy: each
registry knows which module defines each of its names and imports that module on the first
lookup, so building one trainer or dataset imports no other."""
import difflib
import importlib


class Registry:
    """A case-sensitive map from a class name to the class.

    ``modules`` maps each known name to its module, relative to the package ``package()`` returns
    (a function, read at lookup time: plugin mode loads our packages under another name). The
    module registers the class with the decorator when it is imported; a class registered from
    anywhere else (a user's trainer) is found the same way.
    """

    def __init__(self, kind, modules=None, package=None):
        self.kind = kind
        self._modules = dict(modules or {})
        self._package = package
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
        if name not in self._classes and name in self._modules:
            module = importlib.import_module(f".{self._modules[name]}", self._package())
            if name not in self._classes:
                raise KeyError(f"{self.kind} {name!r}: module {module.__name__} does not register it")
        if name not in self._classes:
            close = difflib.get_close_matches(name, self.names(), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(self.names())}")
        return self._classes[name]

    def names(self):
        """Every name, known or registered, without importing anything."""
        return sorted({*self._modules, *self._classes})

    def classes(self):
        """Every class (imports every module)."""
        return [self.get(n) for n in self.names()]

    def __contains__(self, name):
        return name in self._modules or name in self._classes
