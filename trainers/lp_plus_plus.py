"""``--trainer LPPlusPlus``: LP++ (Huang et al., CVPR 2024) on cached features (``methods.lp_plus_plus``).

Each epoch is one full-batch iteration of the official loop over the L2-normalised features of
TRAINER.LPPLUSPLUS.AUG_VIEWS cached augmented views of the few-shot images (the original: one
RandomResizedCrop(0.5-1) + flip pass); initialisation and step sizes are the closed-form ones,
so nothing is searched.

Selection protocol (TRAINER.LPPLUSPLUS.PROTOCOL):
- ``strict`` (default): no validation at all; the last epoch (300) is deployed, as the paper's
  "validation-free" claim reads. With TEST.FINAL_MODEL best_val the epoch is chosen on the
  few-shot val split instead (min(K, 4) per class), recorded as such.
- ``full_val``: the official code keeps the epoch with the best accuracy on a K-per-class sample of
  the dataset's val split (main.py ``generate_fewshot_dataset_(shots, split="val")``; on ImageNet K
  held-out training images per class, main_imagenet.py). Here the epoch is chosen on the dataset's
  whole val split (ImageNet: 50 held-out training images per class, ``datasets/imagenet.py``,
  never test), which needs TEST.FINAL_MODEL best_val (the ``*_full_val.yaml`` configs set both).
  Ties keep the earliest best epoch (Dassl's rule); the original keeps the latest (``>=``).
The checkpoint holds the prototypes, bias, alpha, text prototypes and step sizes, so ``--eval-only
--model-dir`` reloads it, also on a subset of the classes (ImageNet -> ImageNet-A/R).
"""
import torch.nn.functional as F

from methods.lp_plus_plus import (
    ALPHA_GRAD_MODES,
    LPPlusPlusHead,
    text_affinity,
    train_step,
    visual_optimizer,
)
from methods.zero_shot import class_prototypes

from .core.evaluator import batch_accuracy
from .core.registry import TRAINER_REGISTRY
from .features.feature_trainer import FeatureTrainer
from .features.search import SPLIT_NAMES, selection_features
from .features.templates import resolve_templates

MODEL_NAME = "lp_plus_plus"
PROTOCOL_SPLITS = {"strict": "val", "full_val": "full_val"}  # TRAINER.LPPLUSPLUS.PROTOCOL -> epoch-selection split


@TRAINER_REGISTRY.register()
class LPPlusPlus(FeatureTrainer):
    """logits = W f + b + alpha * (T f), fitted by the official full-batch loop (no search)."""

    def build_model(self):
        cfg, c = self.cfg, self.cfg.TRAINER.LPPLUSPLUS
        if c.PROTOCOL not in PROTOCOL_SPLITS:
            raise ValueError(f"TRAINER.LPPLUSPLUS.PROTOCOL must be one of {sorted(PROTOCOL_SPLITS)}, "
                             f"got {c.PROTOCOL!r}")
        if c.PROTOCOL == "full_val" and cfg.TEST.FINAL_MODEL != "best_val":
            raise ValueError("TRAINER.LPPLUSPLUS.PROTOCOL full_val chooses the epoch on the full val split and needs "
                             f"TEST.FINAL_MODEL best_val, got {cfg.TEST.FINAL_MODEL!r}")
        if c.ALPHA_GRAD not in ALPHA_GRAD_MODES:
            raise ValueError(f"TRAINER.LPPLUSPLUS.ALPHA_GRAD must be one of {ALPHA_GRAD_MODES}, got {c.ALPHA_GRAD!r}")
        if c.EPOCHS < 1 or c.AUG_VIEWS < 1 or c.ALPHA_EVERY < 1:
            raise ValueError("TRAINER.LPPLUSPLUS.EPOCHS, AUG_VIEWS and ALPHA_EVERY must be >= 1, got "
                             f"{c.EPOCHS}, {c.AUG_VIEWS} and {c.ALPHA_EVERY}")
        if len(c.AUG_SCALE) != 2 or not 0 < c.AUG_SCALE[0] <= c.AUG_SCALE[1] <= 1:
            raise ValueError(f"TRAINER.LPPLUSPLUS.AUG_SCALE must be (low, high) with 0 < low <= high <= 1, "
                             f"got {c.AUG_SCALE}")
        mode, templates = resolve_templates(cfg.DATASET.NAME, c.TEMPLATES, "TRAINER.LPPLUSPLUS.TEMPLATES")
        print(f"LP++ text prototypes: {len(templates)} template(s) ({mode}): {templates}")
        text = class_prototypes(self.class_text_features(templates)).float()
        self.max_epoch = c.EPOCHS
        self.head = LPPlusPlusHead(text).to(self.device)
        self.register_model(MODEL_NAME, self.head)

    def feature_splits(self):
        """The epoch is chosen (under best_val) on the protocol's split, never both val splits."""
        split = PROTOCOL_SPLITS[self.cfg.TRAINER.LPPLUSPLUS.PROTOCOL]
        return [split if s == "val" else s for s in super().feature_splits()]

    def selection_protocol(self):
        """Nothing but (under best_val) the epoch is chosen: on ``fewshot_val`` or ``full_val``."""
        protocol = self.cfg.TRAINER.LPPLUSPLUS.PROTOCOL
        selected = super().selection_protocol()["selected"]
        return {"protocol": protocol,
                "selected": {key: SPLIT_NAMES[PROTOCOL_SPLITS[protocol]] for key in selected}}

    def train_views(self):
        c = self.cfg.TRAINER.LPPLUSPLUS
        return self.augmented_train_features(c.AUG_VIEWS, scale=tuple(c.AUG_SCALE))

    def before_train(self):
        """Training features, the closed-form initialisation and step sizes, and the optimizer,
        built only when training (an eval-only run needs no training split)."""
        views = self.train_views()
        features = views.features.reshape(-1, views.features.shape[-1]).float().to(self.device)
        labels = views.labels.repeat(views.features.shape[0]).to(self.device)
        features = F.normalize(features, dim=-1)
        self.head.initialise(features, labels)
        self.optim = visual_optimizer(self.head)
        self.register_model(MODEL_NAME, self.head, self.optim, replace=True)
        self.train_loader_x = [(features, labels, text_affinity(features, self.head.text_prototypes))]
        print(f"LP++: {len(labels)} training features ({views.features.shape[0]} view(s)), init alpha "
              f"{self.head.alpha[0].item():.4g}, lr_w {self.head.lr_visual.item():.4g}, "
              f"lr_alpha {self.head.lr_alpha.item():.4g}, {self.max_epoch} full-batch epochs")
        if self.cfg.TRAINER.LPPLUSPLUS.PROTOCOL == "full_val":
            print("LP++: the epoch is chosen on the full val split (PROTOCOL full_val): the *val* evaluations "
                  "below read it")
        super().before_train()

    def forward_backward(self, batch):
        c = self.cfg.TRAINER.LPPLUSPLUS
        features, labels, affinity = batch
        loss, logits = train_step(self.head, self.optim, features, labels, self.epoch, c.ALPHA_GRAD, c.ALPHA_EVERY,
                                  affinity)
        return {"loss": loss.item(), "acc": batch_accuracy(logits, labels),
                "alpha": self.head.alpha.mean().item()}

    def test_batches(self, split):
        """Under PROTOCOL full_val the best-val epoch is chosen on the full val split (without the
        run's few-shot images: only ImageNet's held-out set can hold some)."""
        if split != "val" or self.cfg.TRAINER.LPPLUSPLUS.PROTOCOL == "strict":
            return super().test_batches(split)
        data = selection_features(self, "full_val")
        size = self.cfg.DATALOADER.TEST.BATCH_SIZE
        return zip(data.features.to(self.device).split(size), data.labels.to(self.device).split(size))

    def model_inference(self, features):
        return self.head(features)

    def remap_classes(self, name, state_dict, trained_classes):
        """Per-class rows (prototypes, bias, alpha, its gradient, text) of the evaluated classes."""
        index = self.eval_class_index(trained_classes)
        per_class = ("weight", "bias", "alpha", "alpha_grad", "text_prototypes")
        return {key: value[index] if key in per_class else value for key, value in state_dict.items()}
