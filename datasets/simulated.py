"""The simulated CLIP-feature benchmark: the embedded default that runs anywhere in seconds.

Class *concepts* live on the unit sphere; the text encoder sees each concept through
per-class noise (imperfect prompts) and per-template noise; images of a class scatter
around the concept *rotated* by a near-identity rotation (misalignment between the two
encoders), plus a low-rank class spread, isotropic noise and a *shared offset* (the
modality gap). ``SimulatedShift`` draws its test images with an extra rotation and more
noise, the stand-in for ImageNet-V2/Sketch-style distribution shift.

Everything is a deterministic function of ``DATASET.SIMULATED.SEED`` (the data set), while
``--seed`` drives few-shot sampling as on a real dataset. Items are Datum with virtual
paths (``sim/<split>/<class>/<index>``); features come from ``SimulatedFeatures``.
"""
import hashlib
import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.linalg import expm

from common.stable_seed import stable_seed

from .base import DatasetBase
from .datum import Datum
from .feature_source import FeatureSource
from .registry import DATASET_REGISTRY


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def near_identity_rotation(rng, dim, angle):
    """``expm(angle * A)`` for a random skew-symmetric A with unit-variance entries / sqrt(dim)."""
    a = rng.standard_normal((dim, dim)) / math.sqrt(dim)
    return expm(angle * (a - a.T) / math.sqrt(2.0))


@dataclass(frozen=True)
class SimulationSpec:
    num_classes: int
    dim: int
    concept_cosine: float
    train_per_class: int
    val_per_class: int
    test_per_class: int
    text_noise: float
    template_noise: float
    rotation: float
    gap: float
    spread: float
    spread_rank: int
    noise: float
    aug_noise: float
    shift: float
    seed: int

    @classmethod
    def from_cfg(cls, node):
        return cls(**{name: node[name.upper()] for name in cls.__dataclass_fields__})


class PromptWorld:
    """What the simulated worlds share: a prompt template sees the class prototypes
    (``self.text_prototypes``) through per-template noise, seeded by the template."""

    def text_features(self, classnames, template):
        rng = np.random.default_rng(stable_seed(self.spec.seed, "template", template))
        eps = rng.standard_normal(self.text_prototypes.shape) / math.sqrt(self.spec.dim)
        protos = unit(self.text_prototypes + self.spec.template_noise * eps)
        index = {name: i for i, name in enumerate(self.classnames)}
        return protos[[index[name] for name in classnames]].astype(np.float32)


class SimulatedWorld(PromptWorld):
    """The generator: class concepts, text prototypes, image distributions per split."""

    SPLITS = ("train", "val", "test", "shift")

    def __init__(self, spec):
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        d, c = spec.dim, spec.num_classes
        self.classnames = [f"class_{i:03d}" for i in range(c)]
        common = math.sqrt(spec.concept_cosine / (1.0 - spec.concept_cosine)) * unit(rng.standard_normal(d))
        self.concepts = unit(common + unit(rng.standard_normal((c, d))))
        self.text_prototypes = unit(self.concepts + spec.text_noise * rng.standard_normal((c, d)) / math.sqrt(d))
        self.rotation = near_identity_rotation(rng, d, spec.rotation)
        self.gap = spec.gap * unit(rng.standard_normal(d))
        self.spread_basis = rng.standard_normal((c, spec.spread_rank, d)) / math.sqrt(spec.spread_rank)
        self.shift_rotation = near_identity_rotation(rng, d, spec.shift)
        self.features = {split: self._draw_split(split) for split in self.SPLITS}

    def per_class(self, split):
        s = self.spec
        return {"train": s.train_per_class, "val": s.val_per_class}.get(split, s.test_per_class)

    def _draw_split(self, split):
        """``[C * n, d]`` raw image features of one split, class-major order."""
        s = self.spec
        rng = np.random.default_rng(stable_seed(s.seed, "images", split))
        n, d = self.per_class(split), s.dim
        labels = np.repeat(np.arange(s.num_classes), n)
        z = rng.standard_normal((len(labels), s.spread_rank))
        within = np.einsum("nr,nrd->nd", z, self.spread_basis[labels])
        noise_scale = s.noise * (1.0 + s.shift if split == "shift" else 1.0)
        x = unit(self.concepts[labels] + s.spread * within / math.sqrt(d))
        x = x + noise_scale * rng.standard_normal((len(labels), d)) / math.sqrt(d)
        x = unit(x) @ self.rotation.T
        if split == "shift":
            x = x @ self.shift_rotation.T
        return unit(x + self.gap).astype(np.float32)

    def items(self, split):
        n = self.per_class(split)
        return [
            Datum(impath=f"sim/{split}/{name}/{i:04d}", label=label, classname=name)
            for label, name in enumerate(self.classnames)
            for i in range(n)
        ]


class SimulatedFeatures(FeatureSource):
    """Serves the world's features for Datum lists by their virtual paths."""

    logit_scale = 100.0

    def __init__(self, world):
        self.world = world
        self.rows = {}
        for split in world.SPLITS:
            for row, item in enumerate(world.items(split)):
                self.rows[item.impath] = (split, row)

    def image_features(self, items, split, view=None):
        try:
            located = [self.rows[item.impath] for item in items]
        except KeyError as e:
            raise KeyError(f"{e.args[0]!r} is not an item of the simulated dataset") from None
        feats = np.stack([self.world.features[s][row] for s, row in located])
        if view is not None:
            feats = unit(feats + self._view_noise(located, view))
        return torch.from_numpy(feats.astype(np.float32))

    def _view_noise(self, located, view):
        spec = self.world.spec
        out = np.empty((len(located), spec.dim))
        for i, (split, row) in enumerate(located):
            rng = np.random.default_rng(stable_seed(spec.seed, view.seed, "view", split, row, view.index))
            out[i] = rng.standard_normal(spec.dim)
        return spec.aug_noise * out / math.sqrt(spec.dim)

    def text_features(self, classnames, templates):
        return torch.from_numpy(np.stack([self.world.text_features(classnames, t) for t in templates], axis=1))

    def summary(self):
        s = self.world.spec
        return (f"simulated CLIP features (classes={s.num_classes}, dim={s.dim}, gap={s.gap}, "
                f"rotation={s.rotation}, text_noise={s.text_noise}, seed={s.seed})")

    def identity(self):
        """The generator, its seed, and a digest of its whole spec (every feature is a function of them)."""
        spec = asdict(self.world.spec)
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        return {"source": "simulated", "generator": type(self.world).__name__, "seed": self.world.spec.seed,
                "config_digest": digest[:16]}


_WORLDS = {}


def world_for(cfg):
    """One generated world per spec and process (generation takes a fraction of a second)."""
    spec = SimulationSpec.from_cfg(cfg.DATASET.SIMULATED)
    if spec not in _WORLDS:
        _WORLDS[spec] = SimulatedWorld(spec)
    return _WORLDS[spec]


@DATASET_REGISTRY.register()
class Simulated(DatasetBase):
    """The simulated benchmark: train / val / test drawn from the same distribution."""

    test_split = "test"
    split_origin = "generated"

    def __init__(self, cfg):
        self.world = world_for(cfg)
        self.root = self.dataset_dir = self.image_dir = ""
        test = self.world.items(self.test_split)
        if self.test_only:
            self.setup_splits(cfg, test, None, test)
        else:
            self.setup_splits(cfg, self.world.items("train"), self.world.items("val"), test)

    def fewshot_cache_dir(self):
        return None  # sampling is instant and the data live in memory: nothing to cache

    def feature_source(self, cfg):
        return SimulatedFeatures(self.world)


@DATASET_REGISTRY.register()
class SimulatedShift(Simulated):
    """Test-only shifted variant (train on Simulated, evaluate here with --eval-only)."""

    test_only = True
    source_dataset = "Simulated"  # what to train on instead (named in the refusal to train here)
    test_split = "shift"
