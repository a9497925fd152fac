"""Shared fixtures: the repo on sys.path, an isolated feature cache, the tiny CLIP model,
a small image dataset in CoOp's DescribableTextures layout, and an in-process train.py."""
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"  # no test may try the network

from datasets.synthetic_dtd import DTD_CLASSES, write_dtd  # noqa: E402,F401  (tests import them from here)
from trainers.features.tiny_clip import TINY_CONFIG, save_tiny_clip, tiny_clip_args  # noqa: E402,F401

if os.environ.get("PYTEST_XDIST_WORKER"):  # parallel workers (pyproject's -n) share the cores: one thread each
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own feature cache (never ~/.cache)."""
    monkeypatch.setenv("FEWSHOT_CLIP_CACHE", str(tmp_path / "fewshot_clip_cache"))


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_clip")
    return SimpleNamespace(config=str(TINY_CONFIG),
                           weights=str(save_tiny_clip(folder / "tiny_a.pt", seed=0)),
                           other_weights=str(save_tiny_clip(folder / "tiny_b.pt", seed=1)))


@pytest.fixture
def dtd_root(tmp_path):
    root = tmp_path / "data"
    write_dtd(root)
    return root


def tiny_args(tiny_clip, root, out, *opts, flags=(), trainer="ZeroshotCLIP", seed=1, weights=None):
    """train.py arguments for the tiny model on the DTD copy (flags before KEY VALUE opts)."""
    return tiny_clip_args(weights or tiny_clip.weights, root, out, *opts, flags=flags, trainer=trainer, seed=seed)


def run_train(argv):
    """train.py's main in this process, quiet on the console; returns the trainer."""
    from trainers.core import run as train

    return train.main([str(a) for a in argv], echo=False)


def read_log(out):
    return (Path(out) / "log.txt").read_text()


def coop_parse(log_text, end_signal="Finish training", keyword="accuracy"):
    """What CoOp's parse_test_res.py extracts: the metric after the end signal line."""
    good_to_go, value = False, None
    for line in log_text.splitlines():
        line = line.strip()
        if line == end_signal:
            good_to_go = True
        match = re.search(rf"\* {keyword}: ([\.\deE+-]+)%", line)
        if match and good_to_go:
            value = float(match.group(1))
    return value


RESULT_BLOCK = re.compile(
    r"^=> result\n"
    r"\* total: (?P<total>[\d,]+)\n"
    r"\* correct: (?P<correct>[\d,]+)\n"
    r"\* accuracy: (?P<acc>\d+\.\d)%\n"
    r"\* error: (?P<err>\d+\.\d)%\n"
    r"\* macro_f1: (?P<f1>\d+\.\d)%$",
    re.M,
)


def poison_splits(trainer, splits, nan=("test",), keep_labels=False):
    """Replace the cached features of ``splits`` by Gaussian noise (NaN for the splits in ``nan``)
    and, unless ``keep_labels``, their labels by random ones: a result that does not change never
    read them. Seeded, so two runs get the same noise."""
    import math

    import torch

    from trainers.features.feature_trainer import LabeledFeatures

    generator = torch.Generator().manual_seed(0)
    for split in splits:
        real = trainer.split_features(split)
        features = torch.randn(real.features.shape, generator=generator) * (math.nan if split in nan else 1.0)
        labels = real.labels if keep_labels else torch.randint(0, trainer.num_classes, real.labels.shape,
                                                                generator=generator)
        trainer._split_features[split] = LabeledFeatures(features, labels)


def split_reads(trainer, methods=("split_features",)):
    """The list, filled as the trainer runs, of every split it asks ``methods`` for."""
    asked = []
    for name in methods:
        original = getattr(trainer, name)
        setattr(trainer, name, lambda split, original=original: asked.append(split) or original(split))
    return asked
