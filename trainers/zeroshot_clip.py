"""ZeroshotCLIP (CoOp's per-dataset template) and ZeroshotCLIP2 (CoOp's prompt ensemble)."""

from methods.zero_shot import class_prototypes, clip_logits

from .core.registry import TRAINER_REGISTRY
from .features.feature_trainer import FeatureTrainer
from .features.templates import format_prompt, templates_for


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(FeatureTrainer):
    """logits = logit_scale * norm(image) @ norm(mean over templates of norm(text)).T"""

    trains = False
    fits_on_train = False  # reads no training data: runs on test-only sets (ImageNet-V2/Sketch/A/R) too
    supports_retrieval = True  # on a paired dataset: zero-shot CLIP retrieval
    default_templates = "custom"

    def build_model(self):
        mode = self.cfg.TRAINER.ZEROSHOTCLIP.TEMPLATES or self.default_templates
        templates = templates_for(self.cfg.DATASET.NAME, mode)
        if len(templates) == 1:
            print(f"Prompts: {[format_prompt(templates[0], c) for c in self.classnames]}")
        else:
            print(f"Prompt ensembling (n={len(templates)})")
        self.prototypes = class_prototypes(self.class_text_features(templates)).to(self.device)
        self.logit_scale = self.features.logit_scale

    def model_inference(self, image_features):
        return clip_logits(image_features, self.prototypes, self.logit_scale)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """CoOp's prompt-ensembling zero-shot trainer."""

    default_templates = "ensemble"
    supports_retrieval = False  # prompts do not enter pair retrieval: it would repeat ZeroshotCLIP
