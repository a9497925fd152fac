"""``--trainer CoOp``: Context Optimization (Zhou et al., IJCV 2022, arXiv 2109.01134).

Learnable context vectors in front of (or around) each class name go through CLIP's frozen
text encoder; logits = logit_scale * norm(image) @ norm(text).T. Only the prompt learner is
optimised and checkpointed. CLIP's image encoder is frozen too, so evaluation images come from
the feature cache. Training images (TRAINER.COOP.FEATURE_VIEWS):
- 0 (default, CoOp's): every batch is re-augmented with Dassl's train transform (INPUT.*:
  random_resized_crop at INPUT.RRCROP_SCALE, random_flip, normalize) and encoded on the fly;
- N > 0: each epoch draws one of N cached augmented views per image (RandomResizedCrop at
  INPUT.RRCROP_SCALE + flip, encoded once). Much faster (the image encoder never runs while
  training), but the model sees only N crops per image instead of a fresh one each epoch.
"""
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from datasets.image_loading import ImageViews
from datasets.transforms import augment_transform
from methods.prompt_learner import PromptLearner, coop_logits, text_encoder

from .core.checkpoint import load_checkpoint
from .core.evaluator import batch_accuracy
from .core.lr_scheduler import build_lr_scheduler
from .core.optim import build_optimizer
from .core.registry import TRAINER_REGISTRY
from .features.feature_trainer import FeatureTrainer

PRECISIONS = {"fp16": torch.float16, "fp32": torch.float32, "amp": torch.float32}  # text encoder dtype
TRAIN_TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")


@TRAINER_REGISTRY.register()
class CoOp(FeatureTrainer):
    feature_level = False  # needs CLIP's text encoder: no simulated benchmark

    @classmethod
    def extractable(cls, cfg):
        """With FEATURE_VIEWS 0 the training images are encoded while training: nothing to prepare."""
        return cfg.TRAINER.COOP.FEATURE_VIEWS > 0

    # --- model ----------------------------------------------------------------------------
    def build_model(self):
        c = self.cfg.TRAINER.COOP
        if c.PREC not in PRECISIONS:
            raise ValueError(f"TRAINER.COOP.PREC must be one of {list(PRECISIONS)}, got {c.PREC!r}")
        self.precision = c.PREC if self.device.type == "cuda" else "fp32"
        if not callable(getattr(self.features, "model", None)):
            raise ValueError(f"CoOp trains prompts through CLIP's text encoder, and DATASET.NAME "
                             f"{self.cfg.DATASET.NAME} serves features without a CLIP model: run it on an image "
                             "dataset with a CLIP backbone")
        import open_clip  # seconds to import: only once a CLIP model is in use

        clip_model = self.features.model()
        print("Building custom CLIP")
        self.text_encoder = text_encoder(clip_model, PRECISIONS[self.precision])
        tokenizer = open_clip.get_tokenizer(self.features.spec.model_name)
        if c.CSC and not c.CTX_INIT:
            print("Initializing class-specific contexts")
        elif not c.CTX_INIT:
            print("Initializing a generic context")
        self.prompt_learner = PromptLearner(
            self.classnames, tokenizer, clip_model.token_embedding, n_ctx=c.N_CTX, ctx_init=c.CTX_INIT, csc=c.CSC,
            class_token_position=c.CLASS_TOKEN_POSITION, dtype=self.text_encoder.dtype).to(self.device)
        print(f'Initial context: "{self.prompt_learner.prompt_prefix}"')
        print(f"Number of context words (tokens): {self.prompt_learner.n_ctx}")
        print("Turning off gradients in both the image and the text encoder")
        if self.cfg.MODEL.INIT_WEIGHTS:  # Dassl's load_pretrained_weights for the prompt learner
            ckpt = load_checkpoint(self.cfg.MODEL.INIT_WEIGHTS)
            self.load_state("prompt_learner", self.prompt_learner, ckpt.get("state_dict", ckpt))
            print(f"Initial context loaded from {self.cfg.MODEL.INIT_WEIGHTS} (MODEL.INIT_WEIGHTS)")
        optim = build_optimizer(self.prompt_learner, self.cfg.OPTIM)
        self.register_model("prompt_learner", self.prompt_learner, optim, build_lr_scheduler(optim, self.cfg.OPTIM))
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "amp" else None
        self.logit_scale = self.features.logit_scale
        self.eval_text = None

    def encode_prompts(self):
        """``[C, d]`` text features of the current prompts (not normalised)."""
        return self.text_encoder(self.prompt_learner(), self.prompt_learner.tokenized_prompts)

    def model_inference(self, image_features):
        text = self.eval_text if self.eval_text is not None else self.encode_prompts()
        return coop_logits(image_features.to(self.device), text, self.logit_scale)

    @torch.no_grad()
    def test(self, split=None):
        """The prompts do not depend on the image: encode them once per evaluation."""
        self.set_model_mode("eval")
        self.eval_text = self.encode_prompts()
        try:
            return super().test(split)
        finally:
            self.eval_text = None

    # --- training -------------------------------------------------------------------------
    def before_train(self):
        """The training loader is built only when training (eval-only runs need no train split)."""
        self.train_loader_x = self.build_train_loader()
        super().before_train()

    def build_train_loader(self):
        batch_size = self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE
        num_views = self.cfg.TRAINER.COOP.FEATURE_VIEWS
        if num_views < 0:
            raise ValueError(f"TRAINER.COOP.FEATURE_VIEWS must be >= 0, got {num_views}")
        if num_views:
            print(f"Training on {num_views} cached augmented views per image (TRAINER.COOP.FEATURE_VIEWS)")
            return self.view_batches(self.train_views(), batch_size)
        items = self.split_items("train")
        workers = self.cfg.DATALOADER.NUM_WORKERS
        images = ImageViews([item.impath for item in items], [(train_transform(self.cfg.INPUT), None)])
        loader = DataLoader(images, batch_size=batch_size, shuffle=True, drop_last=len(items) >= batch_size,
                            num_workers=workers, persistent_workers=workers > 0,
                            pin_memory=self.device.type == "cuda")
        return EncodedImageBatches(loader, self.labels_of(items), self.features.encode_image_batch)

    def train_views(self):
        """FEATURE_VIEWS > 0: the cached views at INPUT.RRCROP_SCALE that training draws from."""
        num_views = self.cfg.TRAINER.COOP.FEATURE_VIEWS
        if num_views <= 0:
            return None
        return self.augmented_train_features(num_views, scale=tuple(self.cfg.INPUT.RRCROP_SCALE))

    def forward_backward(self, batch):
        features, labels = (t.to(self.device) for t in batch)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.scaler is not None):
            logits = self.model_inference(features)
            loss = F.cross_entropy(logits, labels)
        if self.scaler is None:
            self.model_backward_and_update(loss)
        else:
            self.scaled_backward_and_update(loss)
        return {"loss": loss.item(), "acc": batch_accuracy(logits, labels)}

    def scaled_backward_and_update(self, loss):
        """PREC amp: CoOp's GradScaler step (skips steps whose gradients overflowed)."""
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {self.epoch + 1}: training diverged")
        optim = self._optims["prompt_learner"]
        optim.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.step(optim)
        self.scaler.update()

    # --- checkpoints for other class lists --------------------------------------------------
    def remap_classes(self, name, state_dict, trained_classes):
        """Class-specific contexts: the evaluation classes' rows; a shared context fits any classes."""
        ctx = state_dict["ctx"]
        if ctx.dim() == 3:
            ctx = ctx[self.eval_class_index(trained_classes)]
        return {**state_dict, "ctx": ctx}

    def load_state(self, name, model, state_dict):
        """Load the context only: CoOp's own checkpoints also hold the class prompts' token
        buffers, which are rebuilt here from the current class names (as CoOp drops them)."""
        ctx = state_dict["ctx"]
        if ctx.shape != model.ctx.shape:
            raise ValueError(f"the checkpoint's context has shape {tuple(ctx.shape)}, this model's "
                             f"{tuple(model.ctx.shape)}: use the TRAINER.COOP.N_CTX / CSC / CTX_INIT of training")
        model.load_state_dict({"ctx": ctx})


def train_transform(input_cfg):
    """Dassl's train transform for CoOp's INPUT.TRANSFORMS: RandomResizedCrop(SIZE,
    RRCROP_SCALE), then a horizontal flip with "random_flip", then normalisation."""
    choices = list(input_cfg.TRANSFORMS)
    unsupported = [t for t in choices if t not in TRAIN_TRANSFORMS]
    if "random_resized_crop" not in choices or unsupported:
        raise ValueError(f"CoOp's online augmentation (TRAINER.COOP.FEATURE_VIEWS 0) needs INPUT.TRANSFORMS with "
                         f"random_resized_crop and only {list(TRAIN_TRANSFORMS)}, got {choices}")
    transform, _ = augment_transform(input_cfg, tuple(input_cfg.RRCROP_SCALE), flip="random_flip" in choices)
    return transform


class EncodedImageBatches:
    """The training loader of FEATURE_VIEWS 0: freshly augmented image batches encoded by the
    frozen image encoder, as ``(features [B, d], labels [B])``."""

    def __init__(self, loader, labels, encode):
        self.loader, self.labels, self.encode = loader, labels, encode

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for images, index in self.loader:
            yield self.encode(images[:, 0]), self.labels[index]
