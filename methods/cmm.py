"""CMM (Cross-Modal Mapping, arXiv 2412.20110) as plain torch: the residual linear map of image
features into the text space, the trainable text prototypes, the fused logits and the loss.

    v' = v W (+ b) + v                      (W zero-initialised: CMM starts as zero-shot CLIP)
    logits = s * v @ T0^T + alpha * s * norm(v') @ norm(T)^T
    loss = CE(logits, y) + lambda * mean(relu(d(v', T_y) - min_{c != y} d(v', T_c) + margin))

``v`` is the L2-normalised frozen image feature, ``T0`` the template-mean text prototypes,
``T`` a trainable copy of them, ``s`` CLIP's logit scale. ``gda_map_init`` gives the map
another start (an ablation): GDA's closed form (methods/gda.py) carried into the text space.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .gda import fit_gda


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

    @torch.no_grad()
    def initialise(self, weight):
        """Start from ``weight`` instead of the default (e.g. ``gda_map_init``'s)."""
        self.weight.copy_(weight)

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


def gda_map_init(features, labels, prototypes, residual=True):
    """CMM's map weight initialised from GDA's closed form on the training ``features``.

    GDA's scores are affine, ``v Wg + bg`` (``fit_gda``); the map is linear, so the bias is
    carried by ``u``, the least-squares direction with ``v u ~ 1`` on the training features
    (L2-normalised CLIP features lie in a cone, so ``v u`` stays close to 1):
    ``A = Wg + u bg`` gives ``v A ~ v Wg + bg``. CMM scores ``v' T0^T`` (up to the per-sample
    norm of ``v'``, which changes no ranking). The map ``v' = v M`` closest to CMM's zero start
    (M = I) with ``M T0^T = k A`` is
        M = I + (k A - T0^T) pinv(T0^T)      (least change in Frobenius norm; least squares
                                              when there are more classes than dimensions)
    i.e. ``v' = v (I - Pi) + k v A pinv(T0^T)``, Pi the projector onto the prototypes' span: the
    part of v outside it is kept, the part inside becomes GDA's scores carried into the text
    space, so the initial CMM logits rank classes as GDA does. ``k`` gives those scores
    zero-shot's spread over classes (mean over the training features of the std over classes
    of ``v T0^T``), so the fusion weighs both terms as at the zero start. Residual maps get
    ``M - I``; a map bias, when there is one, stays zero.
    """
    v = F.normalize(features.double(), dim=-1)
    t = F.normalize(prototypes.double().to(v.device), dim=-1).t()  # [d, C]
    gda_weight, gda_bias = (x.double() for x in fit_gda(v, labels, t.shape[1]))
    ones = torch.ones(len(v), dtype=v.dtype, device=v.device)
    u = torch.linalg.pinv(v.t() @ v) @ (v.t() @ ones)  # min-norm least squares of v u = 1
    affine = gda_weight + u[:, None] * gda_bias[None]
    k = (v @ t).std(dim=1).mean() / (v @ affine).std(dim=1).mean()
    delta = (k * affine - t) @ torch.linalg.pinv(t)  # M - I
    if not residual:
        delta = delta + torch.eye(delta.shape[0], dtype=delta.dtype, device=delta.device)
    return delta.float()


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
