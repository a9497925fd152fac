"""CMM (Cross-Modal Mapping, arXiv 2412.20110) as plain torch: the residual linear map of image
features into the text space, the trainable text prototypes, the fused logits and the loss.

    v' = v W (+ b) + v                      (W zero-initialised: CMM starts as zero-shot CLIP)
    logits = s * v @ T0^T + alpha * s * norm(v') @ norm(T)^T
    loss = CE(logits, y) + lambda * mean(relu(d(v', T_y) - min_{c != y} d(v', T_c) + margin))

``v`` is the L2-normalised frozen image feature, ``T0`` the template-mean text prototypes,
``T`` a trainable copy of them, ``s`` CLIP's logit scale.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class CrossModalMap(nn.Module):
    """``v W + v`` with W = 0 at start (the paper's residual map), or a plain ``v W`` with W
    initialised like ``nn.Linear`` (the no-residual ablation: W = I would be the same model as
    the residual one under another name)."""

    def __init__(self, dim, residual=True, bias=False):
        super().__init__()
        self.residual = residual
        weight = torch.zeros(dim, dim)
        if not residual:
            nn.init.kaiming_uniform_(weight, a=5 ** 0.5)  # nn.Linear's default
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, v):
        out = v @ self.weight
        if self.bias is not None:
            out = out + self.bias
        return out + v if self.residual else out


class CMMHead(nn.Module):
    """The whole trainable CMM model on frozen features: map, prototypes, fused logits."""

    def __init__(self, prototypes, logit_scale, alpha=1.0, residual=True, bias=False, train_prototypes=True,
                 fusion=True):
        super().__init__()
        prototypes = F.normalize(prototypes.float(), dim=-1)
        self.register_buffer("zero_shot_prototypes", prototypes.clone())
        self.prototypes = nn.Parameter(prototypes.clone(), requires_grad=train_prototypes)
        self.map = CrossModalMap(prototypes.shape[1], residual=residual, bias=bias)
        self.logit_scale, self.alpha, self.fusion = logit_scale, alpha, fusion

    def mapped(self, image_features):
        """``v'`` for raw image features (normalised first, as the method defines ``v``)."""
        return self.map(F.normalize(image_features, dim=-1))

    def forward(self, image_features):
        """``(fused logits, v')``; without fusion the logits are CMM's alone."""
        v = F.normalize(image_features, dim=-1)
        mapped = self.map(v)
        cmm = self.logit_scale * F.normalize(mapped, dim=-1) @ F.normalize(self.prototypes, dim=-1).t()
        if not self.fusion:
            return cmm, mapped
        return self.logit_scale * v @ self.zero_shot_prototypes.t() + self.alpha * cmm, mapped


def prototype_distances(mapped, prototypes, distance="cosine"):
    """``[N, C]`` distances from mapped features to prototypes: 1 - cosine, or the Euclidean
    distance between the L2-normalised vectors."""
    a, b = F.normalize(mapped, dim=-1), F.normalize(prototypes, dim=-1)
    if distance == "cosine":
        return 1.0 - a @ b.t()
    if distance == "euclidean":
        return torch.cdist(a, b)
    raise ValueError(f"TRAINER.CMM.DISTANCE must be cosine or euclidean, got {distance!r}")


def triplet_loss(mapped, prototypes, labels, margin, distance="cosine", negative="hardest"):
    """Anchor = mapped image feature, positive = its class prototype, negative = the closest
    wrong-class prototype ("hardest") or a uniformly drawn wrong class ("random")."""
    d = prototype_distances(mapped, prototypes, distance)
    positive = d.gather(1, labels[:, None]).squeeze(1)
    if negative == "hardest":
        wrong = d.scatter(1, labels[:, None], float("inf"))
        neg = wrong.min(dim=1).values
    elif negative == "random":
        shift = torch.randint(1, d.shape[1], labels.shape, device=labels.device)  # global RNG: seeded
        neg = d.gather(1, ((labels + shift) % d.shape[1])[:, None]).squeeze(1)
    else:
        raise ValueError(f"TRAINER.CMM.NEGATIVE must be hardest or random, got {negative!r}")
    return F.relu(positive - neg + margin).mean()


def cmm_loss(logits, mapped, prototypes, labels, lam, margin, distance="cosine", negative="hardest"):
    """Cross-entropy on the fused logits plus ``lam`` times the triplet term; returns both parts."""
    ce = F.cross_entropy(logits, labels)
    if lam == 0:
        return ce, ce, torch.zeros_like(ce)
    trip = triplet_loss(mapped, prototypes, labels, margin, distance, negative)
    return ce + lam * trip, ce, trip
