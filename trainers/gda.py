"""``--trainer GDA``: Gaussian discriminant analysis fused with zero-shot CLIP (Wang et al., ICLR
2024; the formulas and the original's constants are in ``methods/gda.py``), training-free.

``fit()`` estimates the class means and the shrunk shared covariance from the
TRAINER.GDA.AUGMENT_EPOCH cached augmented views of the few-shot images (each view
L2-normalised, one sample each; the feature cache's view bank at Tip-Adapter's crop scale, so
the two methods share it), then chooses alpha on TRAINER.GDA.ALPHA_GRID on the split
TRAINER.GDA.PROTOCOL names:
- ``strict`` (default): the few-shot val split (min(K, 4) per class), like every other choice here;
- ``full_val``: the original's split, the dataset's whole val split (its datasets/ classes keep
  the split file's val list whole). On ImageNet the original searched on the test set (its
  ``val_features = test_features``); that is never offered: ``full_val`` there is ImageNet's
  held-out set of 50 training images per class (``datasets/imagenet.py``), without the run's
  few-shot images, as Tip-Adapter's ``full_val`` is.
A grid of one value fixes alpha and reads no val split. The test split is never read by ``fit()``.
The classifier (text prototypes, W, b, alpha) is a registered module of buffers: ``--eval-only
--model-dir`` reloads it, on a subset of the classes too (rows / columns picked by class id, the wnid).
"""
import torch
import torch.nn.functional as F

from methods.gda import GDAHead, fit_gda
from methods.tip_adapter import CACHE_AUG_SCALE
from methods.zero_shot import class_prototypes

from .core.evaluator import batch_accuracy
from .core.registry import TRAINER_REGISTRY
from .features.feature_trainer import FeatureTrainer
from .features.search import SPLIT_DESCRIPTIONS, SPLIT_NAMES, grid_search, selection_features
from .features.templates import resolve_templates

MODEL_NAME = "gda"
PROTOCOL_SPLITS = {"strict": "val", "full_val": "full_val"}  # TRAINER.GDA.PROTOCOL -> searched split


@TRAINER_REGISTRY.register()
class GDA(FeatureTrainer):
    """Training-free: ``fit()`` estimates GDA's classifier and searches alpha on val."""

    trains = False

    # --- settings and model ---------------------------------------------------------------------
    def build_model(self):
        """Check TRAINER.GDA, build the text classifier and an empty GDA head (filled by ``fit()``
        or by a checkpoint)."""
        c = self.cfg.TRAINER.GDA
        if c.PROTOCOL not in PROTOCOL_SPLITS:
            raise ValueError(f"TRAINER.GDA.PROTOCOL must be one of {sorted(PROTOCOL_SPLITS)}, got {c.PROTOCOL!r}")
        if c.AUGMENT_EPOCH < 1:
            raise ValueError(f"TRAINER.GDA.AUGMENT_EPOCH must be >= 1, got {c.AUGMENT_EPOCH}")
        if not c.ALPHA_GRID or any(not isinstance(a, (int, float)) or a < 0 for a in c.ALPHA_GRID):
            raise ValueError(f"TRAINER.GDA.ALPHA_GRID must be a non-empty list of numbers >= 0, got {c.ALPHA_GRID}")
        mode, templates = resolve_templates(self.cfg.DATASET.NAME, c.TEMPLATES, "TRAINER.GDA.TEMPLATES")
        self.head = GDAHead(class_prototypes(self.class_text_features(templates)), self.features.logit_scale,
                            alpha=c.ALPHA_GRID[0]).to(self.device)
        self.register_model(MODEL_NAME, self.head)
        print(f"GDA: {len(templates)} template(s) ({mode}): {templates}; {c.AUGMENT_EPOCH} views per image; "
              f"alpha grid {list(c.ALPHA_GRID)} (protocol {c.PROTOCOL}: {SPLIT_DESCRIPTIONS[self.search_split]})")

    @property
    def search_split(self):
        return PROTOCOL_SPLITS[self.cfg.TRAINER.GDA.PROTOCOL]

    @property
    def searches(self):
        return len(self.cfg.TRAINER.GDA.ALPHA_GRID) > 1

    def feature_splits(self):
        """alpha is searched on the protocol's split (none when the grid has one value)."""
        return [*super().feature_splits(), *([self.search_split] if self.searches else [])]

    def selection_protocol(self):
        """alpha, when searched, on the protocol's split; nothing else is chosen."""
        protocol = self.cfg.TRAINER.GDA.PROTOCOL
        return {"protocol": protocol, "selected": {"alpha": SPLIT_NAMES[self.search_split]} if self.searches else {}}

    def train_views(self):
        """The AUGMENT_EPOCH views (RandomResizedCrop 0.5-1 + flip) GDA is estimated from."""
        return self.augmented_train_features(self.cfg.TRAINER.GDA.AUGMENT_EPOCH, scale=CACHE_AUG_SCALE)

    def model_inference(self, image_features):
        return self.head(image_features)

    def remap_classes(self, name, state_dict, trained_classes):
        """Per-class tensors: text prototype rows, W's columns, b's entries (uniform priors: the
        log prior is the same for every class, so a subset needs no re-weighting)."""
        index = self.eval_class_index(trained_classes)
        state = dict(state_dict)
        state["text_prototypes"] = state["text_prototypes"][index]
        state["weight"] = state["weight"][:, index]
        state["bias"] = state["bias"][index]
        return state

    # --- training-free: estimate + search -------------------------------------------------------
    def fit(self):
        views = self.train_views()
        num_views, num_images, dim = views.features.shape
        features = views.features.to(self.device).flatten(0, 1)
        labels = views.labels.to(self.device).repeat(num_views)  # view-major, as flatten(0, 1) orders them
        weight, bias = fit_gda(features, labels, self.num_classes)
        self.head.weight.copy_(weight)
        self.head.bias.copy_(bias)
        print(f"GDA: class means and shared covariance from {num_views} views x {num_images} images "
              f"({dim} dims, {self.num_classes} classes)")
        self.search_alpha()

    @torch.no_grad()
    def search_alpha(self):
        """Set alpha to the grid's best on the protocol's split (the grid's only value without search)."""
        grid = [float(a) for a in self.cfg.TRAINER.GDA.ALPHA_GRID]
        if not self.searches:
            self.head.alpha.fill_(grid[0])
            print(f"GDA: alpha={grid[0]:.4g} (fixed: TRAINER.GDA.ALPHA_GRID has one value, no search)")
            return
        val = selection_features(self, self.search_split)
        labels = val.labels.to(self.device)
        f = F.normalize(val.features.to(self.device).float(), dim=-1)
        zero_shot, gda = self.head.clip_logits(f), self.head.gda_logits(f)
        on = SPLIT_DESCRIPTIONS[self.search_split]
        print(f"Val accuracy ({on}, {len(labels)} images): zero-shot CLIP {batch_accuracy(zero_shot, labels):.2f}%, "
              f"GDA alone {batch_accuracy(gda, labels):.2f}%")
        best, _ = grid_search({"alpha": grid}, lambda p: batch_accuracy(zero_shot + p["alpha"] * gda, labels),
                              name="GDA alpha search", on=on)
        self.head.alpha.fill_(best["alpha"])
