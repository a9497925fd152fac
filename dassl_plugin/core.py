"""This repository's ``trainers`` and ``datasets`` packages, loaded beside a CoOp checkout's.

A CoOp checkout has top-level ``trainers`` and ``datasets`` packages too, and its train.py
imports them first. ``load()`` sets the checkout's modules aside, imports every one of our
modules from this repository, then gives the checkout its modules back and keeps ours in
``sys.modules`` under ``dassl_plugin._trainers.*`` / ``dassl_plugin._datasets.*``. Each of our
modules, and the classes and functions it defines, is renamed to its alias, so
- a relative import that runs later (``from .clip_features import ...`` inside a function)
  finds our module, never the checkout's;
- pickle refers to our classes by the alias, which a fresh process (a DataLoader worker under
  spawn / forkserver) imports by importing ``dassl_plugin``.
Our code has no function-level absolute import of ``trainers`` / ``datasets``; one would reach
the checkout's.
"""
import importlib
import pkgutil
import sys
from contextlib import contextmanager
from pathlib import Path
from types import FunctionType, SimpleNamespace

REPO = str(Path(__file__).resolve().parents[1])
PACKAGES = ("datasets", "trainers")  # our top-level packages whose names a CoOp checkout also uses


def alias(name):
    """Where our module ``name`` ("trainers.cmm") lives once loaded ("dassl_plugin._trainers.cmm")."""
    return f"{__package__}._{name}"


def _clashing(name):
    return name.split(".")[0] in PACKAGES


@contextmanager
def _ours_first():
    """Inside the block ``trainers`` / ``datasets`` import from this repository; after it,
    ``sys.modules`` and ``sys.path`` hold what they held before."""
    theirs = {name: sys.modules.pop(name) for name in list(sys.modules) if _clashing(name)}
    sys.path.insert(0, REPO)
    try:
        yield
    finally:
        sys.path.remove(REPO)  # the first occurrence: the one inserted above
        for name in [name for name in sys.modules if _clashing(name)]:
            del sys.modules[name]
        sys.modules.update(theirs)


def _import_all():
    """Every module of our packages, eagerly (a lazy import could not find them later)."""
    for top in PACKAGES:
        package = importlib.import_module(top)
        for info in pkgutil.walk_packages(package.__path__, f"{top}."):
            importlib.import_module(info.name)
    return {name: module for name, module in sys.modules.items() if _clashing(name)}


def _rename(module, name):
    """Module ``module`` and what it defines now say they live at ``name``."""
    for value in vars(module).values():
        if isinstance(value, (type, FunctionType)) and value.__module__ == module.__name__:
            value.__module__ = name
    module.__name__ = module.__spec__.name = name
    module.__package__ = module.__spec__.parent


def load():
    """Our packages as ``namespace.trainers`` / ``namespace.datasets`` (their submodules are
    attributes, as after ``import trainers.cmm``)."""
    with _ours_first():
        modules = _import_all()
    for name, module in modules.items():
        _rename(module, alias(name))
        sys.modules[alias(name)] = module
    return SimpleNamespace(**{top: modules[top] for top in PACKAGES})


ours = load()
