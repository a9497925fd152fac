"""The simulated paired (image-text) benchmark for few-shot cross-modal retrieval.

Each pair shares an instance latent drawn around its class concept (crowded concepts, as
CLIP's classes are); its image feature is that latent through a near-identity rotation plus a
shared offset (the modality gap) and noise, its text feature the latent plus text noise. The
*target* classes (the last half in label order, as the class split's default) are degraded,
as CLIP is on a new domain: an extra rotation of both modalities and more noise. Source
classes have many training pairs, target classes only the X that the few-shot sampler draws:
the imbalance FLEX-CLIP's generator addresses. Class prompts see each concept through class
and template noise. Deterministic in DATASET.SIMULATED_PAIRS.SEED; ``--seed`` drives the
X-shot sampling.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch

from common.stable_seed import stable_seed

from .pairs import PairDatum, RetrievalDatasetBase, default_class_split
from .registry import DATASET_REGISTRY
from .simulated import PromptWorld, SimulatedFeatures, near_identity_rotation, unit


@dataclass(frozen=True)
class PairedSpec:
    num_classes: int
    dim: int
    concept_cosine: float
    train_per_class: int
    test_per_class: int
    instance_spread: float
    image_noise: float
    text_noise: float
    class_text_noise: float
    template_noise: float
    rotation: float
    gap: float
    target_rotation: float
    target_noise: float
    source_fraction: float
    aug_noise: float
    seed: int

    @classmethod
    def from_cfg(cls, cfg):
        node = cfg.DATASET.SIMULATED_PAIRS
        values = {name: node[name.upper()] for name in cls.__dataclass_fields__ if name != "source_fraction"}
        return cls(source_fraction=cfg.DATASET.RETRIEVAL.SOURCE_FRACTION, **values)


class PairedWorld(PromptWorld):
    """Class concepts, class prompts, and the image / text features of every pair."""

    SPLITS = ("train", "test")

    def __init__(self, spec):
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        d, c = spec.dim, spec.num_classes
        self.classnames = [f"category_{i:03d}" for i in range(c)]
        self.target = set(default_class_split(list(range(c)), spec.source_fraction)[1])
        common = math.sqrt(spec.concept_cosine / (1.0 - spec.concept_cosine)) * unit(rng.standard_normal(d))
        self.concepts = unit(common + unit(rng.standard_normal((c, d))))
        self.text_prototypes = unit(self.concepts + spec.class_text_noise * rng.standard_normal((c, d)) / math.sqrt(d))
        self.rotation = near_identity_rotation(rng, d, spec.rotation)
        self.target_image_rotation = near_identity_rotation(rng, d, spec.target_rotation)
        self.target_text_rotation = near_identity_rotation(rng, d, spec.target_rotation)
        self.gap = spec.gap * unit(rng.standard_normal(d))
        self.features, self.texts = {}, {}
        for split in self.SPLITS:
            self.features[split], self.texts[split] = self._draw_split(split)

    def per_class(self, split):
        return self.spec.train_per_class if split == "train" else self.spec.test_per_class

    def labels(self, split):
        return np.repeat(np.arange(self.spec.num_classes), self.per_class(split))

    def _draw_split(self, split):
        s, d = self.spec, self.spec.dim
        rng = np.random.default_rng(stable_seed(s.seed, "pairs", split))
        labels = self.labels(split)
        target = np.isin(labels, sorted(self.target))[:, None]
        latent = unit(self.concepts[labels] + s.instance_spread * rng.standard_normal((len(labels), d)) / math.sqrt(d))
        noise_scale = np.where(target, 1.0 + s.target_noise, 1.0)
        image = unit(latent @ self.rotation.T + s.image_noise * noise_scale * rng.standard_normal(latent.shape) /
                     math.sqrt(d))
        text = unit(latent + s.text_noise * noise_scale * rng.standard_normal(latent.shape) / math.sqrt(d))
        image = np.where(target, image @ self.target_image_rotation.T, image)
        text = np.where(target, text @ self.target_text_rotation.T, text)
        return unit(image + self.gap).astype(np.float32), unit(text).astype(np.float32)

    def items(self, split):
        return [
            PairDatum(impath=f"simpairs/{split}/{self.classnames[label]}/{i:04d}",
                      text=f"simulated text {split} {self.classnames[label]} {i}", label=int(label),
                      classname=self.classnames[label], uid=f"{split}-{self.classnames[label]}-{i:04d}")
            for i, label in enumerate(self.labels(split))
        ]


class SimulatedPairFeatures(SimulatedFeatures):
    """SimulatedFeatures plus the texts of the pairs."""

    def __init__(self, world):
        super().__init__(world)
        self.text_rows = {item.uid: (split, row) for split in world.SPLITS
                          for row, item in enumerate(world.items(split))}

    def pair_text_features(self, items, split):
        located = [self.text_rows[item.uid] for item in items]
        return torch.from_numpy(np.stack([self.world.texts[s][row] for s, row in located]))

    def summary(self):
        s = self.world.spec
        return (f"simulated image-text pairs (classes={s.num_classes}, dim={s.dim}, gap={s.gap}, "
                f"rotation={s.rotation}, target rotation={s.target_rotation}, seed={s.seed})")


_WORLDS = {}


@DATASET_REGISTRY.register()
class SimulatedPairs(RetrievalDatasetBase):
    """Few-shot cross-modal retrieval on simulated CLIP features (no files, no class split file)."""

    split_origin = "generated"

    def __init__(self, cfg):
        spec = PairedSpec.from_cfg(cfg)
        if spec not in _WORLDS:
            _WORLDS[spec] = PairedWorld(spec)
        self.world = _WORLDS[spec]
        self.root = self.dataset_dir = self.image_dir = ""
        self.setup_pairs(cfg, self.world.classnames, {s: self.world.items(s) for s in self.world.SPLITS})

    def class_split(self, cfg, classnames):
        return default_class_split(classnames, cfg.DATASET.RETRIEVAL.SOURCE_FRACTION)

    def feature_source(self, cfg):
        return SimulatedPairFeatures(self.world)
