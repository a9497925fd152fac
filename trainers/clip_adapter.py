"""CLIPAdapter: the original CLIP-Adapter trainer (gaopengcuhk/CLIP-Adapter, clip_adapter.py)
trained from cached features.

Only the adapter is trained (cross-entropy, CoOp's optimisation config); the text prototypes
of the dataset's CoOp template and the image features stay frozen. The original re-augments
every image every epoch; here each epoch draws one view per image from a fixed bank of
NUM_VIEWS cached RandomResizedCrop(INPUT.RRCROP_SCALE) + flip views.
"""
import torch.nn.functional as F

from methods.clip_adapter import Adapter, adapter_logits
from methods.zero_shot import class_prototypes

from .core.evaluator import batch_accuracy
from .core.registry import TRAINER_REGISTRY
from .features.feature_trainer import FeatureTrainer
from .features.templates import format_prompt, templates_for


@TRAINER_REGISTRY.register()
class CLIPAdapter(FeatureTrainer):
    """logits = logit_scale * norm(ratio * adapter(f) + (1 - ratio) * f) @ norm(text).T"""

    step_budget = True

    def build_model(self):
        cfg, node = self.cfg, self.cfg.TRAINER.CLIPADAPTER
        if not 0.0 <= node.RATIO <= 1.0:
            raise ValueError(f"TRAINER.CLIPADAPTER.RATIO must be in [0, 1], got {node.RATIO}")
        if node.NUM_VIEWS < 1:
            raise ValueError(f"TRAINER.CLIPADAPTER.NUM_VIEWS must be >= 1, got {node.NUM_VIEWS}")
        template = templates_for(cfg.DATASET.NAME, "custom")
        print(f"Prompts: {[format_prompt(template[0], c) for c in self.classnames]}")
        self.prototypes = class_prototypes(self.class_text_features(template)).to(self.device)
        self.logit_scale = self.features.logit_scale
        dim = self.split_features(cfg.TEST.SPLIT).features.shape[1]
        self.adapter = Adapter(dim, node.REDUCTION).to(self.device)
        self.register_model("clip_adapter", self.adapter)  # its optimizer and schedule: before_train

    def train_views(self):
        return self.augmented_train_features(self.cfg.TRAINER.CLIPADAPTER.NUM_VIEWS, scale=self.cfg.INPUT.RRCROP_SCALE)

    def before_train(self):
        """The training views, the optimizer and the epoch schedule (over OPTIM.MAX_STEPS's epochs
        when set) are built here, not in build_model: an eval-only run (ImageNet-A/R have no train
        split) never needs them."""
        self.train_loader_x = self.view_batches(self.train_views(), self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE)
        self.max_epoch = self.budgeted_epochs(self.max_epoch, len(self.train_loader_x))
        self.register_model("clip_adapter", self.adapter, *self.epoch_schedule(self.adapter), replace=True)
        super().before_train()

    def forward_backward(self, batch):
        features, labels = (t.to(self.device) for t in batch)
        logits = self.model_inference(features)
        loss = F.cross_entropy(logits, labels)
        self.model_backward_and_update(loss)
        return {"loss": loss.item(), "acc": batch_accuracy(logits, labels)}

    def model_inference(self, features):
        return adapter_logits(self.adapter, features, self.prototypes, self.cfg.TRAINER.CLIPADAPTER.RATIO,
                              self.logit_scale)

    def remap_classes(self, name, state_dict, trained_classes):
        return state_dict  # class-agnostic: the prototypes are rebuilt for the evaluation classes
