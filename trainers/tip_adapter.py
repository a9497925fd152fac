"""``--trainer TipAdapter`` (training-free) and ``--trainer TipAdapterF`` (learnable cache keys).

Both build Tip-Adapter's cache from TRAINER.TIPADAPTER.AUGMENT_EPOCH cached augmented views of
the few-shot images (RandomResizedCrop 0.5-1 + flip, the feature cache's fixed view bank) and
choose alpha / beta by Tip-Adapter's grid on the split TRAINER.TIPADAPTER.PROTOCOL names.
Settings left at "" / -1 / () take the published value for DATASET.NAME
(``methods.tip_adapter.PUBLISHED``).

Selection protocol (TRAINER.TIPADAPTER.PROTOCOL):
- ``strict`` (default): alpha / beta are searched on the few-shot val split (min(K, 4) per
  class), like every other choice in this project.
- ``full_val``: the original's split, the dataset's whole val split (as read from the split
  file, before few-shot sampling), so the published rows can be reproduced. On ImageNet the
  original searched on the test set; that is never offered: ``full_val`` there is 50 training
  images per class that a fixed seed draws (50,000, the size of the ILSVRC val set), without
  the run's few-shot images (``datasets/imagenet.py``).
Tip-Adapter-F's epoch is never chosen on full_val: the original picks it on TEST, which is
never offered; it is the last epoch, or with TEST.FINAL_MODEL best_val the best few-shot-val one
under either protocol. ``selection_protocol()`` records which split chose what.

Where we differ from the original code on purpose: Tip-Adapter-F keeps the epoch with the best
TEST accuracy and reports max(best test accuracy, final test accuracy). Here Tip-Adapter-F
deploys the last epoch (or, with TEST.FINAL_MODEL best_val, the epoch with the best val
accuracy), and test is evaluated once. Tip-Adapter-F trains on batches of the
cached view bank (one random view per image per epoch, the cache's own AUGMENT_EPOCH views)
instead of re-encoding fresh crops every epoch: training costs a pass over cached features
(scripts/bench_tip_adapter_f.py times both); like Dassl's loader it drops the last partial batch
when there is a full one (the original keeps it).
"""
import os

import torch
import torch.nn.functional as F

from methods.tip_adapter import (
    CACHE_AUG_SCALE,
    TipAdapterHead,
    alpha_beta_correct_counts,
    build_cache,
    published_settings,
)
from methods.zero_shot import class_prototypes

from .core.checkpoint import BEST_NAME, load_checkpoint
from .core.evaluator import batch_accuracy
from .core.lr_scheduler import build_iteration_cosine
from .core.optim import build_optimizer
from .core.registry import TRAINER_REGISTRY
from .features.feature_trainer import FeatureTrainer
from .features.search import SPLIT_DESCRIPTIONS, SPLIT_NAMES, grid_search, linspace_grid, selection_features
from .features.templates import resolve_templates

MODEL_NAME = "tip_adapter"
PROTOCOL_SPLITS = {"strict": "val", "full_val": "full_val"}  # TRAINER.TIPADAPTER.PROTOCOL -> searched split


@TRAINER_REGISTRY.register()
class TipAdapter(FeatureTrainer):
    """Training-free: ``fit()`` builds the cache and searches alpha / beta on val."""

    trains = False

    # --- settings -----------------------------------------------------------------------------
    def resolve_settings(self):
        """TRAINER.TIPADAPTER with the published values filled in where left to the default."""
        c, name = self.cfg.TRAINER.TIPADAPTER, self.cfg.DATASET.NAME
        published, known = published_settings(name)
        scale = tuple(c.SEARCH_SCALE) or published.search_scale
        if c.PROTOCOL not in PROTOCOL_SPLITS:
            raise ValueError(f"TRAINER.TIPADAPTER.PROTOCOL must be one of {sorted(PROTOCOL_SPLITS)}, "
                             f"got {c.PROTOCOL!r}")
        self.search_split = PROTOCOL_SPLITS[c.PROTOCOL]
        if len(scale) != 2 or len(c.SEARCH_STEP) != 2 or min(c.SEARCH_STEP) < 1 or c.AUGMENT_EPOCH < 1:
            raise ValueError("TRAINER.TIPADAPTER: SEARCH_SCALE and SEARCH_STEP need 2 values (beta, alpha), "
                             f"SEARCH_STEP and AUGMENT_EPOCH >= 1; got {scale}, {c.SEARCH_STEP}, {c.AUGMENT_EPOCH}")
        self.init_alpha = c.INIT_ALPHA if c.INIT_ALPHA >= 0 else published.init_alpha
        self.init_beta = c.INIT_BETA if c.INIT_BETA >= 0 else published.init_beta
        self.search_grid = {"beta": linspace_grid(0.1, scale[0], c.SEARCH_STEP[0]),
                            "alpha": linspace_grid(0.1, scale[1], c.SEARCH_STEP[1])}
        self.published = published
        source = f"published for {name}" if known else f"no published settings for {name}: fallback"
        print(f"Tip-Adapter settings ({source}, explicit TRAINER.TIPADAPTER values win): "
              f"init alpha={self.init_alpha}, init beta={self.init_beta}, search scale={scale}, "
              f"steps={tuple(c.SEARCH_STEP)}, search={c.SEARCH} (protocol {c.PROTOCOL}: "
              f"{SPLIT_DESCRIPTIONS[self.search_split]}), {c.AUGMENT_EPOCH} cache views")

    # --- model ----------------------------------------------------------------------------------
    def build_model(self):
        """Text prototypes now; the cache when training (an empty one here, so that ``--eval-only``
        loads a checkpoint's cache of any size)."""
        self.resolve_settings()
        mode, templates = resolve_templates(self.cfg.DATASET.NAME, self.cfg.TRAINER.TIPADAPTER.TEMPLATES,
                                            "TRAINER.TIPADAPTER.TEMPLATES")
        print(f"Tip-Adapter text classifier: {len(templates)} template(s) ({mode}): {templates}")
        self.text_prototypes = class_prototypes(self.class_text_features(templates))
        dim = self.text_prototypes.shape[1]
        self.set_head(self.new_head(torch.empty(0, dim), torch.empty(0, self.num_classes)))

    def new_head(self, keys, values, learnable_keys=False):
        return TipAdapterHead(self.text_prototypes, self.features.logit_scale, keys, values, self.init_alpha,
                              self.init_beta, learnable_keys=learnable_keys).to(self.device)

    def set_head(self, head, optim=None, sched=None):
        """Register (or swap in) the model that is saved, loaded and evaluated."""
        self.head = head
        self.register_model(MODEL_NAME, head, optim, sched, replace=True)

    def feature_splits(self):
        """alpha / beta are searched (or the initial ones scored) on the protocol's split."""
        return [*super().feature_splits(), PROTOCOL_SPLITS[self.cfg.TRAINER.TIPADAPTER.PROTOCOL]]

    def selection_protocol(self):
        """Which split chose what: alpha / beta (when searched) on the protocol's split; the
        epoch of a TEST.FINAL_MODEL best_val Tip-Adapter-F run on the few-shot val split."""
        c = self.cfg.TRAINER.TIPADAPTER
        split = SPLIT_NAMES[PROTOCOL_SPLITS[c.PROTOCOL]]
        selected = {"alpha": split, "beta": split} if c.SEARCH else {}
        return {"protocol": c.PROTOCOL, "selected": {**selected, **super().selection_protocol()["selected"]}}

    def train_views(self):
        """The AUGMENT_EPOCH views at Tip-Adapter's crop scale that the cache is built from."""
        return self.augmented_train_features(self.cfg.TRAINER.TIPADAPTER.AUGMENT_EPOCH, scale=CACHE_AUG_SCALE)

    def cache_views(self):
        """``[V, N, d]`` cached augmented views of the few-shot images, on the device."""
        views = self.train_views()
        views.features, views.labels = views.features.to(self.device), views.labels.to(self.device)
        return views

    def model_inference(self, image_features):
        return self.head(image_features)

    def remap_classes(self, name, state_dict, trained_classes):
        """Per-class tensors: the text prototypes' rows and the value matrix's columns (cache
        entries of classes not evaluated get all-zero values and so no weight)."""
        index = self.eval_class_index(trained_classes)
        state = dict(state_dict)
        state["text_prototypes"] = state["text_prototypes"][index]
        state["values"] = state["values"][:, index]
        return state

    # --- training-free: cache + search ------------------------------------------------------------
    def fit(self):
        views = self.cache_views()
        keys, values = build_cache(views.features, views.labels, self.num_classes)
        print(f"Tip-Adapter cache: {keys.shape[0]} entries x {keys.shape[1]} dims, {values.shape[1]} classes")
        self.set_head(self.new_head(keys, values))
        self.search_alpha_beta()

    @torch.no_grad()
    def search_alpha_beta(self):
        """Log val accuracy (zero-shot, initial alpha / beta), then set alpha / beta to the best
        point of the grid on the protocol's split (TRAINER.TIPADAPTER.SEARCH). Returns its accuracy."""
        head = self.head.eval()
        val = selection_features(self, self.search_split)
        labels = val.labels.to(self.device)
        f = F.normalize(val.features.to(self.device).float(), dim=-1)
        zero_shot = head.clip_logits(f)
        init_acc = batch_accuracy(head(val.features.to(self.device), self.init_alpha, self.init_beta), labels)
        print(f"Val accuracy ({SPLIT_DESCRIPTIONS[self.search_split]}, {len(labels)} images): zero-shot CLIP "
              f"{batch_accuracy(zero_shot, labels):.2f}%, Tip logits with initial alpha={self.init_alpha:.4g}, "
              f"beta={self.init_beta:.4g}: {init_acc:.2f}%")
        if not self.cfg.TRAINER.TIPADAPTER.SEARCH:
            head.set_alpha_beta(self.init_alpha, self.init_beta)
            return init_acc
        # Every grid point scored in one streamed pass (methods.tip_adapter.alpha_beta_correct_counts);
        # grid_search then walks the table in its order (beta outer, alpha inner; ties keep the first).
        betas, alphas = self.search_grid["beta"], self.search_grid["alpha"]
        counts = alpha_beta_correct_counts(f, labels, zero_shot, head.keys, head.values, alphas, betas)
        fractions = (counts.float() / len(labels)).tolist()  # batch_accuracy's float32 mean, from the counts
        table = {(b, a): 100.0 * fractions[i][j] for i, b in enumerate(betas) for j, a in enumerate(alphas)}
        best, best_acc = grid_search(self.search_grid, lambda params: table[params["beta"], params["alpha"]],
                                     name="Tip-Adapter alpha/beta search", on=SPLIT_DESCRIPTIONS[self.search_split])
        head.set_alpha_beta(best["alpha"], best["beta"])
        return best_acc


@TRAINER_REGISTRY.register()
class TipAdapterF(TipAdapter):
    """Tip-Adapter-F: the cache keys fine-tuned with cross-entropy on the Tip logits (initial
    alpha / beta), AdamW with a cosine decay per iteration; then alpha / beta searched on the
    PROTOCOL's split (the epoch is never chosen on full_val: see the module docstring)."""

    trains = True
    lr_step_per_batch = True
    step_budget = True

    def build_model(self):
        super().build_model()
        epochs = self.cfg.TRAINER.TIPADAPTER.EPOCHS
        if epochs > 0:
            self.max_epoch, source = epochs, "TRAINER.TIPADAPTER.EPOCHS"
        elif self.published.epochs:
            self.max_epoch, source = self.published.epochs, f"published for {self.cfg.DATASET.NAME}"
        else:
            self.max_epoch, source = self.cfg.OPTIM.MAX_EPOCH, "OPTIM.MAX_EPOCH"
        print(f"Tip-Adapter-F: {self.max_epoch} epochs ({source})")
        self.epochs_source = source

    def before_train(self):
        """The cache, its learnable head, optimizer and per-iteration schedule, and the loader of
        cached views, built only when training (never for ``--eval-only``)."""
        views = self.cache_views()
        keys, values = build_cache(views.features, views.labels, self.num_classes)
        head = self.new_head(keys, values, learnable_keys=True)
        self.train_loader_x = self.view_batches(views, self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE)
        self.max_epoch = self.budgeted_epochs(self.max_epoch, len(self.train_loader_x), self.epochs_source)
        optim = build_optimizer([head.keys], self.cfg.OPTIM)
        for group in optim.param_groups:
            if "eps" in group:
                group["eps"] = self.cfg.TRAINER.TIPADAPTER.EPS
        sched = build_iteration_cosine(optim, self.max_epoch * len(self.train_loader_x))
        self.set_head(head, optim, sched)
        print(f"Tip-Adapter-F: {keys.shape[0]} learnable keys, {len(self.train_loader_x)} batch(es) per epoch")
        super().before_train()

    def forward_backward(self, batch):
        features, labels = batch
        logits = self.head(features, self.init_alpha, self.init_beta)  # the original trains with the initial ones
        loss = F.cross_entropy(logits, labels)
        self.model_backward_and_update(loss)
        return {"loss": loss.item(), "acc": batch_accuracy(logits, labels)}

    def after_train(self):
        """Search alpha / beta for the deployed keys and store them in the deployed checkpoint (its
        val_result is then the search split's accuracy)."""
        name = ""
        if not self.cfg.TEST.NO_TEST and self.cfg.TEST.FINAL_MODEL == "best_val":
            name = BEST_NAME
            ckpt = load_checkpoint(os.path.join(self.output_dir, MODEL_NAME, BEST_NAME))
            self.head.load_state_dict(ckpt["state_dict"])
            print(f"Tip-Adapter-F: keys of epoch {ckpt['epoch']} (best val accuracy with the initial alpha/beta)")
            epoch = ckpt["epoch"] - 1
        else:
            epoch = self.max_epoch - 1
        val_acc = self.search_alpha_beta()
        self.save_model(epoch, self.output_dir, val_result=val_acc, model_name=name)
        super().after_train()
