"""FeatureTrainer: the base of every trainer that works on frozen CLIP features.

It builds the dataset, asks a FeatureSource (CLIP via the feature cache, or the simulated
benchmark) for features, and evaluates by running ``model_inference`` on feature batches.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from datasets.registry import build_dataset

from ..core.class_map import dataset_class_ids
from ..core.lr_scheduler import build_lr_scheduler
from ..core.optim import build_optimizer
from ..core.retrieval_evaluator import Retrieval
from ..core.trainer_base import TrainerBase

SPLIT_ATTRS = {"train": "train_x", "val": "val", "test": "test", "full_val": "full_val"}  # full_val: pre-few-shot val


@dataclass
class LabeledFeatures:
    features: torch.Tensor  # [N, d], or [V, N, d] for augmented views
    labels: torch.Tensor  # [N], int64


def build_feature_source(cfg, dataset):
    """The simulated dataset serves its own features; image datasets go through CLIP."""
    if hasattr(dataset, "feature_source"):
        return dataset.feature_source(cfg)
    from .clip_features import CLIPFeatureSource  # open_clip takes seconds to import: only when needed

    return CLIPFeatureSource(cfg, dataset)


class FeatureTrainer(TrainerBase):
    feature_level = True
    supports_retrieval = False  # True: embed_images / embed_texts make sense on paired datasets

    def build_data(self):
        self.dataset = self.load_dataset()
        if getattr(self.dataset, "task", "classification") == "retrieval" and not self.supports_retrieval:
            raise ValueError(f"{type(self).__name__} is a classification method; {self.cfg.DATASET.NAME} is a "
                             "cross-modal retrieval dataset (use ZeroshotCLIP or FLEXCLIP)")
        self.lab2cname = self.dataset.lab2cname
        self.classnames = self.dataset.classnames
        self.class_ids = dataset_class_ids(self.dataset)
        self.num_classes = self.dataset.num_classes
        self.features = build_feature_source(self.cfg, self.dataset)
        print(f"Features: {self.features.summary()}")
        self._split_features, self._split_texts = {}, {}
        self.split_features(self.cfg.TEST.SPLIT)  # extract up front: the log's result block stays Dassl's
        if self.retrieval:
            self.split_texts(self.cfg.TEST.SPLIT)

    def load_dataset(self):
        """The dataset named by DATASET.NAME (plugin mode takes it from Dassl's DataManager instead)."""
        return build_dataset(self.cfg)

    @classmethod
    def extractable(cls, cfg):
        """Whether extract_features.py can prepare every frozen feature a run with ``cfg`` reads
        (False for a trainer that encodes images while it trains)."""
        return cls.feature_level

    def prepare_features(self):
        """Load or encode into the feature cache every frozen feature a run of this trainer reads,
        without training (extract_features.py); the class texts were requested by ``build_model``."""
        for split in dict.fromkeys(self.feature_splits()):
            if getattr(self.dataset, SPLIT_ATTRS[split], None):
                self.split_features(split)
                if self.retrieval:
                    self.split_texts(split)
        self.train_views()

    def feature_splits(self):
        """The splits whose evaluation-transform features (and pair texts) a run reads: TEST.SPLIT,
        and val when the best-val epoch is deployed; trainers add the splits they fit on."""
        cfg = self.cfg
        selects_on_val = self.trains and not cfg.TEST.NO_TEST and cfg.TEST.FINAL_MODEL == "best_val"
        return [cfg.TEST.SPLIT, *(["val"] if selects_on_val else [])]

    def train_views(self):
        """The augmented training views (``augmented_train_features``) the trainer trains on, or None."""
        return None

    @property
    def retrieval(self):
        """A paired dataset: evaluation is cross-modal retrieval (mAP), not classification."""
        return getattr(self.dataset, "task", "classification") == "retrieval"

    def split_items(self, split):
        items = getattr(self.dataset, SPLIT_ATTRS[split], None)
        if not items:
            raise ValueError(f"dataset {self.cfg.DATASET.NAME} has no {split} split")
        return items

    @staticmethod
    def labels_of(items):
        return torch.tensor([item.label for item in items], dtype=torch.long)

    def split_features(self, split):
        """Evaluation-transform features of a split (memoised for the run)."""
        if split not in self._split_features:
            items = self.split_items(split)
            self._split_features[split] = LabeledFeatures(self.features.image_features(items, split),
                                                          self.labels_of(items))
        return self._split_features[split]

    def split_texts(self, split):
        """Features of the texts of a split's image-text pairs (memoised for the run)."""
        if split not in self._split_texts:
            self._split_texts[split] = self.features.pair_text_features(self.split_items(split), split)
        return self._split_texts[split]

    def augmented_train_features(self, num_views=None, scale=None):
        """``[V, N, d]`` augmented views of the few-shot training images (FEATURES.AUG_* unless
        given: e.g. CLIP-Adapter asks for CoOp's INPUT.RRCROP_SCALE)."""
        f = self.cfg.FEATURES
        items = self.split_items("train")
        feats = self.features.augmented_image_features(items, "train", num_views or f.AUG_VIEWS,
                                                       scale=scale or f.AUG_SCALE, flip=f.AUG_FLIP, seed=f.AUG_SEED)
        return LabeledFeatures(feats, self.labels_of(items))

    def train_batches_per_epoch(self):
        """Optimiser steps in one epoch over the few-shot images (DATALOADER.TRAIN_X.BATCH_SIZE)."""
        return batches_per_epoch(len(self.split_items("train")), self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE)

    def epoch_schedule(self, params):
        """An optimizer over ``params`` and Dassl's per-epoch schedule (OPTIM) over the run's
        ``max_epoch``, which OPTIM.MAX_STEPS may have cut below OPTIM.MAX_EPOCH."""
        optim_cfg = self.cfg.OPTIM.clone()
        optim_cfg.defrost()
        optim_cfg.MAX_EPOCH = self.max_epoch
        optim = build_optimizer(params, optim_cfg)
        return optim, build_lr_scheduler(optim, optim_cfg)

    def view_batches(self, views, batch_size):
        """A training loader over cached views: each epoch shuffles the images and gives each
        one a random view of the bank (the cached stand-in for re-augmenting every epoch)."""
        return ViewBatches(views.features, views.labels, batch_size)

    def class_text_features(self, templates):
        """``[C, T, d]`` prompt embeddings of this dataset's classes."""
        return self.features.text_features(self.classnames, templates)

    def test_batches(self, split):
        data = self.split_features(split)
        return zip(data.features.to(self.device).split(self.cfg.DATALOADER.TEST.BATCH_SIZE),
                   data.labels.to(self.device).split(self.cfg.DATALOADER.TEST.BATCH_SIZE))

    def test(self, split=None):
        """Classification (TrainerBase), or on a paired dataset image<->text retrieval of the
        split's pairs with ``embed_images`` / ``embed_texts`` (mAP, Retrieval evaluator)."""
        if not self.retrieval:
            return super().test(split)
        split = split or self.cfg.TEST.SPLIT
        self.set_model_mode("eval")
        images, texts = self.split_features(split), self.split_texts(split)
        evaluator = Retrieval(self.cfg, k=self.cfg.TEST.RETRIEVAL_TOPK or None)
        print(f"Evaluate on the *{split}* set")
        with torch.no_grad():
            evaluator.process(self.embed_images(images.features.to(self.device)),
                              self.embed_texts(texts.to(self.device)), images.labels.to(self.device))
        return self.test_result(split, evaluator.evaluate(split))

    def embed_images(self, features):
        """Retrieval embedding of image features (zero-shot CLIP: the features themselves)."""
        return F.normalize(features, dim=-1)

    def embed_texts(self, features):
        return F.normalize(features, dim=-1)

    def report(self):
        cache = getattr(self.features, "cache", None)
        if cache is not None:
            print(cache.summary())


def batches_per_epoch(num_items, batch_size):
    """Full batches only, unless there is not even one (Dassl's drop_last rule)."""
    return num_items // batch_size if num_items >= batch_size else 1


class ViewBatches:
    """Iterates ``(features [B, d], labels [B])``; an epoch = one pass over the images, each
    under a view drawn uniformly from the bank, in a random order (torch's global RNG, so
    seeded runs and resumed runs see the same batches). Like Dassl's train loader, the last
    incomplete batch is dropped when there is at least one full batch."""

    def __init__(self, views, labels, batch_size):
        self.views, self.labels, self.batch_size = views, labels, batch_size

    def __len__(self):
        return batches_per_epoch(len(self.labels), self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n)
        chosen = torch.randint(self.views.shape[0], (n,))
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.views[chosen[idx], idx], self.labels[idx]


class ShuffledBatches:
    """Iterates tuples of aligned tensors (rows = samples) in a new random order every epoch
    (torch's global RNG), with the same drop-last rule as ViewBatches."""

    def __init__(self, tensors, batch_size):
        self.tensors, self.batch_size = tensors, batch_size

    def __len__(self):
        return batches_per_epoch(len(self.tensors[0]), self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.tensors[0]))
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield tuple(t[idx] for t in self.tensors)
