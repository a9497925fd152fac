"""``--trainer ZSLP`` (zero-shot initialised linear probe) and ``--trainer CLAP`` (ZS-LP plus the
class-adaptive constraint), Silva-Rodriguez et al., CVPR 2024 (formulas: ``methods/clap.py``).

Both follow github:jusiro/CLAP (commit dbdf409, ``trainers/adapters.py``, ``train.py``,
``configs/trainers/SGD_lr1e-1_B256_ep300.yaml``, ``scripts/adapt.sh``):
- class weights start at the raw mean of the prompt embeddings: the dataset's CoOp template, and
  on ImageNet CoOp's 7 IMAGENET_TEMPLATES_SELECT plus "a photo of a {}." (8 templates, as
  ``_get_base_text_features`` builds them);
- the support set is TRAINER.CLAP.NUM_VIEWS (20, ``epochs_aumentation``) augmented views of every
  few-shot image (RandomResizedCrop INPUT.RRCROP_SCALE, Dassl's (0.08, 1), + flip: the train
  transforms of the original's config), here served by the feature cache's fixed view bank;
- an epoch is as many batches as Dassl's train loader over the few-shot *images* has
  (N // BATCH_SIZE, at least 1), each batch the next BATCH_SIZE rows of a fresh permutation of
  all views x images (the original's ``run_epoch``), so with fewer images than the batch size an
  epoch is one batch of 256 views;
- SGD lr 0.1, momentum 0.9 (Dassl's default), no weight decay, batch 256, 300 epochs, cosine per
  epoch after one constant warm-up epoch at 1e-5; the last epoch is deployed;
- CLAP: the multipliers are computed once from the zero-shot logits of all support views, then
  fixed (the published CONSTRAINT ``l2``).

Protocol (TRAINER.CLAP.PROTOCOL): ``strict`` only. Nothing is selected on any split: the method is
adapted on the support samples alone, which is the paper's realistic protocol and also how its
published numbers were made, so there is no second protocol to offer (the original evaluated
test during training for its logs only; test is never read here before the final evaluation).
The deployed model's weights, prototypes and multipliers are one registered module: ``--eval-only
--model-dir`` reloads it, also on a subset of the classes (ImageNet-A/R, base -> new).
"""
import torch
import torch.nn.functional as F

from methods.clap import ZeroShotLinearProbe, zero_shot_prototypes

from .core.evaluator import batch_accuracy
from .core.registry import TRAINER_REGISTRY
from .features.feature_trainer import FeatureTrainer, batches_per_epoch
from .features.templates import IMAGENET_ENSEMBLE, custom_template

MODEL_NAME = "zs_linear_probe"
PROTOCOLS = ("strict",)


def original_templates(dataset_name):
    """The original's prompts: the dataset's CoOp template; on ImageNet the 7-template ensemble
    followed by "a photo of a {}." (``_get_base_text_features``)."""
    ensemble = list(IMAGENET_ENSEMBLE) if dataset_name == "ImageNet" else []
    return ensemble + [custom_template(dataset_name)]


class PooledViewBatches:
    """Iterates ``(features [B, d], labels [B])``: each epoch permutes all ``V x N`` (view, image)
    pairs (torch's global RNG) and yields the first ``len(self)`` batches of it, where ``len`` is
    the batch count of a loader over the N images (the original's run_epoch over its augmented
    feature bank)."""

    def __init__(self, views, labels, batch_size):
        self.views, self.labels, self.batch_size = views, labels, batch_size

    def __len__(self):
        return batches_per_epoch(len(self.labels), self.batch_size)

    def __iter__(self):
        num_views, num_images = self.views.shape[:2]
        order = torch.randperm(num_views * num_images)
        for b in range(len(self)):
            pick = order[b * self.batch_size:(b + 1) * self.batch_size]
            view, image = pick // num_images, pick % num_images
            yield self.views[view, image], self.labels[image]


@TRAINER_REGISTRY.register()
class CLAP(FeatureTrainer):
    """ZS-LP + ``mean_c lambda_c ||W_c - T_c||^2``, lambda_c the zero-shot support accuracy of class c."""

    constrained = True  # False (ZSLP): cross-entropy alone
    step_budget = True

    def build_model(self):
        cfg, node = self.cfg, self.cfg.TRAINER.CLAP
        if node.PROTOCOL not in PROTOCOLS:
            raise ValueError(f"TRAINER.CLAP.PROTOCOL must be one of {list(PROTOCOLS)}, got {node.PROTOCOL!r}")
        if node.NUM_VIEWS < 1:
            raise ValueError(f"TRAINER.CLAP.NUM_VIEWS must be >= 1, got {node.NUM_VIEWS}")
        templates = original_templates(cfg.DATASET.NAME)
        print(f"{type(self).__name__} zero-shot prototypes: raw mean over {len(templates)} template(s) {templates}")
        prototypes = zero_shot_prototypes(self.class_text_features(templates))
        self.head = ZeroShotLinearProbe(prototypes, self.features.logit_scale).to(self.device)
        self.register_model(MODEL_NAME, self.head)  # its optimizer and schedule: before_train

    def selection_protocol(self):
        """Nothing is chosen on a validation split (the epoch too is the last one, unless
        TEST.FINAL_MODEL best_val asks for the best few-shot-val epoch)."""
        return {"protocol": self.cfg.TRAINER.CLAP.PROTOCOL, "selected": super().selection_protocol()["selected"]}

    def train_views(self):
        return self.augmented_train_features(self.cfg.TRAINER.CLAP.NUM_VIEWS, scale=self.cfg.INPUT.RRCROP_SCALE)

    def before_train(self):
        """The support views (never needed by ``--eval-only``), CLAP's multipliers, the loader, and
        the optimizer with its epoch schedule (over OPTIM.MAX_STEPS's epochs when set)."""
        views = self.train_views()
        features, labels = views.features.to(self.device), views.labels.to(self.device)
        if self.constrained:
            multipliers = self.head.set_multipliers(features.flatten(0, 1), labels.repeat(features.shape[0]))
            print(f"CLAP multipliers (mean zero-shot probability of the true class over {features.shape[0]} views "
                  f"of each support image): min {multipliers.min():.3f}, mean {multipliers.mean():.3f}, "
                  f"max {multipliers.max():.3f}")
        self.train_loader_x = PooledViewBatches(features, labels, self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE)
        self.max_epoch = self.budgeted_epochs(self.max_epoch, len(self.train_loader_x))
        self.register_model(MODEL_NAME, self.head, *self.epoch_schedule(self.head), replace=True)
        super().before_train()

    def forward_backward(self, batch):
        features, labels = batch
        logits = self.head(features)
        loss = F.cross_entropy(logits, labels)
        summary = {}
        if self.constrained:
            penalty = self.head.penalty()
            loss = loss + penalty
            summary["penalty"] = penalty.item()
        self.model_backward_and_update(loss)
        return {"loss": loss.item(), **summary, "acc": batch_accuracy(logits, labels)}

    def model_inference(self, features):
        return self.head(features)

    def remap_classes(self, name, state_dict, trained_classes):
        """Per-class rows of the weights, prototypes and multipliers, picked for the evaluated classes."""
        index = self.eval_class_index(trained_classes)
        return {key: value if key == "logit_scale" else value[index] for key, value in state_dict.items()}


@TRAINER_REGISTRY.register()
class ZSLP(CLAP):
    """Zero-shot initialised linear probe: cross-entropy on the support views only (TRAINER.CLAP keys)."""

    constrained = False
