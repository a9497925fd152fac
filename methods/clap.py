"""ZS-LP and CLAP: the zero-shot initialised linear probe and its class-adaptive constraint.

Silva-Rodriguez, Hajimiri, Ben Ayed, Dolz, "A Closer Look at the Few-Shot Adaptation of Large
Vision-Language Models", CVPR 2024 (arXiv 2312.12730). Read from github:jusiro/CLAP at commit
dbdf4095b3d824546474c725539b9f4efff3ca0e: ``trainers/adapters.py`` (AdapterMethod with INIT "ZS",
CustomCLIP.forward_lp, zero_shot_constraint, init_lagrangian_multipliers), ``train.py``
(TRAINER.ADAPTER defaults), ``configs/trainers/SGD_lr1e-1_B256_ep300.yaml`` and
``experiments/experiment_{ZSLP,CLAP}.txt`` (the published runs: CONSTRAINT ``none`` / ``l2``).

- Class weights ``W`` (``[C, d]``) start at the zero-shot prototypes ``T``: per class, the *raw*
  (not normalised) text embeddings averaged over the prompt templates (``_get_base_text_features``:
  ``text_embeddings.mean(1)``).
- logits = logit_scale * norm(f) @ norm(W).T, logit_scale = CLIP's exp(logit_scale), 100 for
  OpenAI CLIP (``forward_lp``): at step 0 these are zero-shot CLIP's logits.
- ZS-LP minimises the cross-entropy on the support set; CLAP adds
  ``mean_c lambda_c * ||W_c - T_c||^2`` (``zero_shot_constraint``, l2 dissimilarity, mean over
  classes), whose class-wise multipliers are the support set's mean zero-shot softmax probability
  of the true class: ``lambda_c = mean over the samples x of class c of softmax(logits_zs(x))_c``
  (``init_lagrangian_multipliers``, computed on every augmented view of the support images).
  The published runs (CONSTRAINT ``l2``) keep these multipliers fixed: the code's augmented
  Lagrangian outer step (PHR update) runs only with a CONSTRAINT containing ``adaptative``, which
  no published experiment uses, so it is not implemented here.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def zero_shot_prototypes(text_features):
    """``[C, T, d]`` raw prompt embeddings -> ``[C, d]``: their plain mean over templates, not
    normalised (the original's base text features, which W starts at and the penalty pulls to)."""
    if text_features.dim() != 3:
        raise ValueError(f"text features must be [classes, templates, dim], got shape {tuple(text_features.shape)}")
    return text_features.float().mean(dim=1)


def cosine_logits(image_features, weights, logit_scale):
    """``logit_scale * norm(f) @ norm(W).T`` (the original's forward_lp)."""
    return logit_scale * F.normalize(image_features.float(), dim=-1) @ F.normalize(weights, dim=-1).t()


def true_class_probabilities(logits, labels):
    """``[N]``: each sample's softmax probability of its own class."""
    return logits.float().softmax(dim=-1).gather(1, labels[:, None]).squeeze(1)


def per_class_mean(values, labels, num_classes):
    """``[C]``: the mean of ``values`` over the samples of each class (every class needs one)."""
    counts = torch.bincount(labels, minlength=num_classes)
    if len(counts) != num_classes:
        raise ValueError(f"labels up to {len(counts) - 1} do not fit {num_classes} classes")
    if (counts == 0).any():
        missing = (counts == 0).nonzero().flatten().tolist()
        raise ValueError(f"CLAP's multipliers need support samples of every class; none of classes {missing}")
    sums = torch.zeros(num_classes, device=values.device).index_add_(0, labels, values.float())
    return sums / counts.to(sums)


def class_multipliers(zero_shot_logits, labels):
    """``[C]``: per class, the mean zero-shot softmax probability of that class over its support
    samples (CLAP's initial Lagrangian multipliers: high where zero-shot is already right, so those
    weights stay near their prototype)."""
    return per_class_mean(true_class_probabilities(zero_shot_logits, labels), labels, zero_shot_logits.shape[1])


def constraint_penalty(weights, prototypes, multipliers):
    """``mean_c multipliers_c * ||W_c - T_c||^2`` (the original's zero_shot_constraint, ``l2``)."""
    return (multipliers * (weights - prototypes).pow(2).sum(dim=-1)).mean()


class ZeroShotLinearProbe(nn.Module):
    """Learnable class weights, initialised at the zero-shot prototypes, scored by cosine logits;
    the prototypes and multipliers are buffers so that a checkpoint holds everything it needs."""

    def __init__(self, prototypes, logit_scale):
        super().__init__()
        prototypes = prototypes.detach().float()
        self.weights = nn.Parameter(prototypes.clone())
        self.register_buffer("prototypes", prototypes.clone())
        self.register_buffer("multipliers", torch.zeros(len(prototypes)))
        self.register_buffer("logit_scale", torch.tensor(float(logit_scale)))

    def forward(self, image_features):
        return cosine_logits(image_features, self.weights, self.logit_scale)

    @torch.no_grad()
    def set_multipliers(self, image_features, labels, chunk=8192):
        """CLAP's multipliers from the zero-shot logits (the prototypes') of the support samples,
        ``chunk`` rows at a time (ImageNet: 20 views x 16,000 images x 1,000 classes)."""
        probs = torch.cat([true_class_probabilities(cosine_logits(f, self.prototypes, self.logit_scale), y)
                           for f, y in zip(image_features.split(chunk), labels.split(chunk))])
        self.multipliers.copy_(per_class_mean(probs, labels, len(self.prototypes)))
        return self.multipliers

    def penalty(self):
        return constraint_penalty(self.weights, self.prototypes, self.multipliers)
