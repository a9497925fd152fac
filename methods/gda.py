"""GDA (Wang et al., ICLR 2024, "A Hard-to-Beat Baseline for Training-free CLIP-based
Adaptation") as plain torch: Gaussian discriminant analysis on few-shot CLIP features, fused
with zero-shot CLIP.

    mu_c  = mean of the L2-normalised features of class c                  [C, d]
    P     = d * pinv((n - 1) * Cov + tr(Cov) * I)   Cov = torch.cov of the  [d, d]
            within-class centred features (n of them; the shared covariance's shrinkage)
    W     = P mu^T,   b_c = log(1 / C) - mu_c P mu_c^T / 2                  [d, C], [C]
    logits = s * f @ T^T + alpha * (f @ W + b)                              (f = norm(image feature))

Read from mrflogs/ICLR24 at commit 560fe211700964c915442ff98dbe47dd09656a35, main_few_shots.py
(``run``) and utils.py (``clip_classifier``, ``pre_load_features``); constants and where they
come from:
- every augmented view is L2-normalised on its own and is one sample (``vecs`` in ``run``:
  augment_epoch passes over the few-shot loader, no averaging over views, unlike Tip-Adapter's
  cache keys); the val / test features are L2-normalised too (``pre_load_features``);
- ``GDA_AUGMENT_EPOCH = 10`` (``recipes``): configs/few_shots/*.yaml ``augment_epoch: 10``; the views are
  RandomResizedCrop(224, scale=(0.5, 1)) + horizontal flip (``train_tranform``), Tip-Adapter's
  cache views (``methods.tip_adapter.CACHE_AUG_SCALE``);
- the shrinkage (the paper's "KS estimator" comment): ``d * pinv((n-1) Cov + tr(Cov) I)``,
  ``Cov`` torch's unbiased covariance of the centred features; the priors are uniform;
- ``GDA_ALPHA_GRID = (1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100)``, searched in that order on val, a later
  alpha kept only when strictly better (``best_alpha`` starts at 0.1 with accuracy 0, so when
  every alpha scores 0% the original keeps 0.1; a grid search here keeps the first, 1e-4);
- the zero-shot term's scale is 100 (OpenAI CLIP's logit scale; here the backbone's own scale,
  which is 100 for OpenAI CLIP and the simulated benchmark); the GDA term is not scaled.
Here the estimate is computed in float64 (the original's features are CLIP's fp16 outputs on
the GPU) and stored in float32.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def class_means(features, labels, num_classes):
    """``[C, d]`` mean feature of each class; every class needs at least one sample."""
    counts = torch.bincount(labels, minlength=num_classes)
    if len(counts) > num_classes or (counts == 0).any():
        raise ValueError(f"GDA needs at least one training feature of each of the {num_classes} classes, "
                         f"got per-class counts {counts.tolist()}")
    sums = torch.zeros(num_classes, features.shape[1], dtype=features.dtype, device=features.device)
    return sums.index_add_(0, labels, features) / counts[:, None].to(features.dtype)


def shrinkage_precision(centred):
    """The official code's shrunk inverse of the shared covariance of within-class centred
    features ``[n, d]``: ``d * pinv((n - 1) * Cov + tr(Cov) * I)``."""
    n, dim = centred.shape
    if n < 2:
        raise ValueError(f"GDA's covariance needs at least 2 training features, got {n}")
    cov = torch.cov(centred.t())
    eye = torch.eye(dim, dtype=cov.dtype, device=cov.device)
    return dim * torch.linalg.pinv((n - 1) * cov + torch.trace(cov) * eye)


def fit_gda(features, labels, num_classes):
    """``(W [d, C], b [C])`` of GDA with a shared covariance and uniform priors, from features
    ``[n, d]`` (L2-normalised here, per sample, as the original normalises each view)."""
    f = F.normalize(features.double(), dim=-1)
    mu = class_means(f, labels, num_classes)
    precision = shrinkage_precision(f - mu[labels])
    weight = precision @ mu.t()
    log_prior = torch.full((num_classes,), -math.log(num_classes), dtype=f.dtype, device=f.device)  # uniform
    bias = log_prior - 0.5 * (mu @ precision * mu).sum(dim=1)
    return weight.float(), bias.float()


class GDAHead(nn.Module):
    """Zero-shot CLIP plus alpha times GDA's linear logits; every tensor is a buffer, so a
    checkpoint holds the whole classifier (text prototypes, W, b and the chosen alpha)."""

    def __init__(self, text_prototypes, logit_scale, weight=None, bias=None, alpha=0.1):
        super().__init__()
        prototypes = F.normalize(text_prototypes.float(), dim=-1)
        num_classes, dim = prototypes.shape
        self.logit_scale = logit_scale
        self.register_buffer("text_prototypes", prototypes)
        self.register_buffer("weight", torch.zeros(dim, num_classes) if weight is None else weight.float().clone())
        self.register_buffer("bias", torch.zeros(num_classes) if bias is None else bias.float().clone())
        self.register_buffer("alpha", torch.tensor(float(alpha)))

    def clip_logits(self, f):
        """Zero-shot CLIP's logits for normalised features ``f``."""
        return self.logit_scale * f @ self.text_prototypes.t()

    def gda_logits(self, f):
        """GDA's linear discriminant ``f W + b`` for normalised features ``f``."""
        return f @ self.weight + self.bias

    def forward(self, image_features, alpha=None):
        """Fused logits of raw image features, with the stored alpha unless given."""
        f = F.normalize(image_features.float(), dim=-1)
        return self.clip_logits(f) + (self.alpha if alpha is None else alpha) * self.gda_logits(f)
