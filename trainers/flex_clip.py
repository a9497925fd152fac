"""``--trainer FLEXCLIP``: FLEX-CLIP on frozen CLIP features (README, "FLEX-CLIP and few-shot cross-modal retrieval").

The dataset decides the task:
- retrieval (a paired dataset: Wikipedia, Pascal Sentence, manifests, SimulatedPairs): stage 1
  trains an image and a text VAE-GAN on the real source pairs and the X-shot target pairs, then
  generates NUM_GENERATED pseudo pairs per target class; stage 2 trains the gated projections
  and a shared classifier on real + pseudo pairs; the target test pairs are retrieved across
  modalities with the fused features (mAP@all);
- classification (the 11 CoOp datasets, Simulated): the text side is the class prompt, stage 1
  generates pseudo image features for every class, stage 2 projects both sides, and an image
  is classified by cosine to the fused class-prompt features.
Every choice the paper leaves open is a TRAINER.FLEXCLIP key (``core.trainer_nodes``). Pseudo features
come from a generator seeded by ``--seed`` alone, so a resumed run regenerates the same ones.

Reproducibility: the adversarial stage 1 and the stage-2 training amplify last-bit differences
into visible ones (a few 0.01 of mAP per run), and torch's CPU kernels round differently with the
intra-op thread count (a reduction or GEMM split over 4 threads is summed in another order than
over 1 or 2). Training and testing therefore run under ``TRAINER.FLEXCLIP.NUM_THREADS`` torch
threads (default 1; the models are small MLPs, so threads gain little), which makes a seeded run
bit-identical whatever ``torch.set_num_threads`` / OMP_NUM_THREADS / the launcher's core split
says. Another vector ISA (AVX2 vs AVX-512 kernels) still rounds differently: README, FLEX-CLIP.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from common.stable_seed import stable_seed
from methods.flex_clip import (
    CosineClassifier,
    GatedProjection,
    ModalityVAEGAN,
    alignment_loss,
    class_alignment_loss,
    fit_vaegan,
    generate,
)
from methods.zero_shot import class_prototypes

from .core.evaluator import batch_accuracy
from .core.registry import TRAINER_REGISTRY
from .core.trainer_nodes import flex_clip_node
from .features.feature_trainer import FeatureTrainer, ShuffledBatches, batches_per_epoch
from .features.templates import templates_for
from .features.threads import fixed_threads


@TRAINER_REGISTRY.register()
class FLEXCLIP(FeatureTrainer):
    supports_retrieval = True
    step_budget = True  # OPTIM.MAX_STEPS caps stage 2's epochs (stage 1 is already a step count)
    # Defaults re-chosen on the few-shot val split of the simulated benchmarks (retrieval: the val
    # pairs of datasets/pairs.py; classification: CoOp's min(K, 4) val), never on test; the
    # figures are in the README's FLEX-CLIP decisions.
    CHOSEN_ON_VAL = {"retrieval": ("GENERATE", "NUM_GENERATED", "PROJECTION", "GATE_BIAS", "ALIGN"),
                     "classification": ("NUM_GENERATED_CLS",)}

    # --- model --------------------------------------------------------------------------
    def build_model(self):
        c = self.cfg.TRAINER.FLEXCLIP
        self.class_embeddings = class_prototypes(
            self.class_text_features(templates_for(self.cfg.DATASET.NAME, c.TEMPLATES))).to(self.device)
        dim = self.class_embeddings.shape[1]
        modalities = ["image", "text"] if self.retrieval else ["image"]
        self.vaegans = nn.ModuleDict({m: ModalityVAEGAN(dim, dim, c.HIDDEN, c.LATENT) for m in modalities})
        self.stage2 = nn.ModuleDict({
            "image": GatedProjection(dim, c.PROJ_HIDDEN, c.PROJECTION, c.GATE_BIAS),
            "text": GatedProjection(dim, c.PROJ_HIDDEN, c.PROJECTION, c.GATE_BIAS),
            "classifier": CosineClassifier(dim, self.num_classes, c.CLASSIFIER_SCALE),
        }).to(self.device)
        self.vaegans.to(self.device)
        self.register_model("stage1", self.vaegans)
        self.register_model("stage2", self.stage2)  # its optimizer and schedule: before_train
        task = "retrieval" if self.retrieval else "classification"
        print(f"FLEX-CLIP ({task}): VAE-GAN on {modalities}, projection {c.PROJECTION}, generate {c.GENERATE} "
              f"({self.pseudo_per_class()} per class), align {c.ALIGN} x {c.ALIGN_WEIGHT}")

    def selection_protocol(self):
        """Strict: the task's CHOSEN_ON_VAL keys that keep their default were chosen on the few-shot
        val split (a key set by hand was chosen by whoever set it: not listed)."""
        selection = super().selection_protocol()
        defaults = CN(new_allowed=True)
        defaults.TRAINER = CN(new_allowed=True)
        flex_clip_node(defaults)
        c, d = self.cfg.TRAINER.FLEXCLIP, defaults.TRAINER.FLEXCLIP
        keys = self.CHOSEN_ON_VAL["retrieval" if self.retrieval else "classification"]
        selection["selected"] = {**{key: "fewshot_val" for key in keys if c[key] == d[key]}, **selection["selected"]}
        return selection

    # --- the numerically sensitive part, under a fixed thread count ------------------------------
    def train(self):
        with fixed_threads(self.cfg.TRAINER.FLEXCLIP.NUM_THREADS):
            super().train()

    def test(self, split=None):
        with fixed_threads(self.cfg.TRAINER.FLEXCLIP.NUM_THREADS):
            return super().test(split)

    # --- training data ------------------------------------------------------------------------
    def real_training_data(self):
        """``(image, text, labels)`` of what training may read: the source pairs and the X-shot
        target pairs (retrieval), or the few-shot images under every cached view (classification:
        text None, each image's text is its class prompt, which stage 2 projects once per step)."""
        if self.retrieval:
            items = self.dataset.train_x
            image = self.features.image_features(items, "train")
            text = F.normalize(self.features.pair_text_features(items, "train"), dim=-1).to(self.device)
            labels = self.labels_of(items)
        else:
            views = self.train_views()
            image, text = views.features.flatten(0, 1), None
            labels = views.labels.repeat(views.features.shape[0])
        return F.normalize(image, dim=-1).to(self.device), text, labels.to(self.device)

    def feature_splits(self):
        """Retrieval trains on the train pairs' image features and texts."""
        return [*super().feature_splits(), *(["train"] if self.retrieval else [])]

    def train_views(self):
        """Classification trains on the views of the few-shot images."""
        return None if self.retrieval else self.augmented_train_features()

    def generation_targets(self):
        """The classes that get pseudo pairs: the target classes, or every class (classification)."""
        return list(self.dataset.target_labels) if self.retrieval else list(range(self.num_classes))

    # --- stage 1 ------------------------------------------------------------------------------
    def fit_stage1(self, image, text, labels):
        c = self.cfg.TRAINER.FLEXCLIP
        feats = {"image": image, "text": text}
        optimizers = {m: {
            "critic": torch.optim.Adam(self.vaegans[m].critic.parameters(), lr=c.STAGE1_LR, betas=(0.5, 0.999)),
            "vae": torch.optim.Adam(list(self.vaegans[m].encoder.parameters()) +
                                    list(self.vaegans[m].generator.parameters()), lr=c.STAGE1_LR, betas=(0.5, 0.999)),
        } for m in self.vaegans}
        settings = {"kl": c.KL_WEIGHT, "reconstruction": c.RECONSTRUCTION_WEIGHT, "adversarial": c.ADVERSARIAL_WEIGHT,
                    "gp": c.GP_WEIGHT, "cross_modal": c.CROSS_MODAL_WEIGHT, "n_critic": c.N_CRITIC,
                    "reconstruction_kind": c.RECONSTRUCTION, "cross_modal_kind": c.CROSS_MODAL}
        batch_size = self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE
        a = self.class_embeddings[labels]

        def sample_batch():  # with replacement: torch's global RNG, so seeded runs repeat
            idx = torch.randint(len(labels), (batch_size,), device=labels.device)
            # index_select: the same rows as feats[m][idx], without advanced indexing's overhead
            return {m: feats[m].index_select(0, idx) for m in self.vaegans}, a.index_select(0, idx)

        self.vaegans.train()
        fit_vaegan(self.vaegans, sample_batch, c.STAGE1_STEPS, optimizers, settings)
        self.vaegans.eval()

    def pseudo_per_class(self):
        """Pseudo pairs generated per class: NUM_GENERATED (retrieval) or NUM_GENERATED_CLS."""
        c = self.cfg.TRAINER.FLEXCLIP
        return c.NUM_GENERATED if self.retrieval else c.NUM_GENERATED_CLS

    def pseudo_pairs(self):
        """``pseudo_per_class`` pseudo ``(image, text, labels)`` per generation class; text is None
        after a text-less stage 1 (classification: the class prompt is the text)."""
        generator = torch.Generator().manual_seed(stable_seed(self.cfg.SEED, "flexclip-pseudo"))
        feats, labels = generate(self.vaegans, self.class_embeddings, self.generation_targets(),
                                 self.pseudo_per_class(), generator)
        labels = labels.to(self.device)
        return feats["image"], feats.get("text"), labels

    # --- stage 2 (Dassl's loop) -----------------------------------------------------------------
    def before_train(self):
        """Stage 1 (skipped when resuming: its weights come from the checkpoint), generation,
        then the stage-2 loader over real + pseudo pairs."""
        image, text, labels = self.real_training_data()
        self.build_stage2_optimizer(len(labels))
        super().before_train()
        if self.cfg.TRAINER.FLEXCLIP.GENERATE:
            if self.start_epoch == 0:
                self.fit_stage1(image, text, labels)
            pseudo = self.pseudo_pairs()
            print(f"Generated {len(pseudo[2]):,} pseudo pairs for {len(self.generation_targets())} classes")
            image, text, labels = (r if r is None else torch.cat([r, p]) for r, p in zip((image, text, labels), pseudo))
        print(f"Stage 2 on {len(labels):,} pairs")
        columns = [image, labels] if text is None else [image, labels, text]
        self.train_loader_x = ShuffledBatches(columns, self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE)

    def build_stage2_optimizer(self, num_real):
        """Stage 2's optimizer and epoch schedule, over OPTIM.MAX_STEPS's epochs when set (counted
        on the real + pseudo pairs it will see); built before a resume restores their state."""
        generated = self.pseudo_per_class() * len(self.generation_targets())
        pairs = num_real + (generated if self.cfg.TRAINER.FLEXCLIP.GENERATE else 0)
        batches = batches_per_epoch(pairs, self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE)
        self.max_epoch = self.budgeted_epochs(self.max_epoch, batches)
        self.register_model("stage2", self.stage2, *self.epoch_schedule(self.stage2), replace=True)

    def forward_backward(self, batch):
        c = self.cfg.TRAINER.FLEXCLIP
        image, labels = batch[:2]
        f_image = self.stage2["image"](image)
        if self.retrieval:
            f_text = self.stage2["text"](batch[2])
        else:  # every text is its class prompt: project the prompts once, index each image's
            f_classes = self.stage2["text"](self.class_embeddings)
            f_text = f_classes.index_select(0, labels)
        classify = self.stage2["classifier"]
        logits = classify(f_image)
        ce = F.cross_entropy(logits, labels) + F.cross_entropy(classify(f_text), labels)
        align = (alignment_loss(f_image, f_text, labels, c.ALIGN, c.TEMPERATURE) if self.retrieval
                 else class_alignment_loss(f_image, f_classes, labels, c.TEMPERATURE))
        loss = ce + c.ALIGN_WEIGHT * align
        self.model_backward_and_update(loss, names=["stage2"])
        return {"loss": loss.item(), "ce": ce.item(), "align": align.item(), "acc": batch_accuracy(logits, labels)}

    # --- evaluation ---------------------------------------------------------------------------
    def embed_images(self, features):
        return self.stage2["image"](features)

    def embed_texts(self, features):
        return self.stage2["text"](features)

    def model_inference(self, image_features):
        """Classification: cosine of the fused image to every fused class prompt."""
        classes = self.embed_texts(self.class_embeddings)
        return self.features.logit_scale * self.embed_images(image_features) @ classes.t()

    def remap_classes(self, name, state_dict, trained_classes):
        """Only the shared classifier is per class; the projections and generators are not (the
        class embeddings they read are rebuilt for the evaluation classes)."""
        if name == "stage2":
            state_dict = dict(state_dict)
            state_dict["classifier.weight"] = state_dict["classifier.weight"][self.eval_class_index(trained_classes)]
        return state_dict

