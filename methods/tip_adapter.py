"""Tip-Adapter and Tip-Adapter-F (Zhang et al., ECCV 2022) as plain torch: the cache model, the
Tip logits, and the published per-dataset settings.

    keys   = norm(mean over V augmented views of the raw image features)     [N, d]
    values = one_hot(labels)                                                  [N, C]
    logits = s * f @ W^T + alpha * exp(-beta * (1 - f @ keys^T)) @ values     (f = norm(image feature))

``W`` are the class text prototypes, ``s`` the backbone's logit scale: the original code
hard-codes 100, which is OpenAI CLIP's scale (and the simulated benchmark's), so published
settings carry over; other backbones (SigLIP, the tiny test model) get their own scale.
Tip-Adapter-F makes ``keys`` learnable (initialised from the cache, not re-normalised while
training); the values and the text prototypes stay fixed. The original trains in fp16 (hence
AdamW eps 1e-4); here everything is fp32.

Exact fast paths (issue 14; the same numbers up to float summation order): with one-hot values
the product ``exp(...) @ values`` is a per-class sum of the weight columns (``index_add``: N*B
additions instead of N*B*C multiply-adds), and the alpha / beta search streams the affinity in
chunks of val rows, computing each beta's exponential once per chunk and scoring every alpha at
once (``alpha_beta_correct_counts``): its memory does not grow with the grid.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

CACHE_AUG_SCALE = (0.5, 1.0)  # the original's RandomResizedCrop scale for the cache views (and flip)


@dataclass(frozen=True)
class PublishedSettings:
    """One dataset's values in the original ``configs/<dataset>.yaml`` (search_step is [200, 20]
    and augment_epoch 10 everywhere). ``epochs`` is Tip-Adapter-F's train_epoch where it is not
    the usual 20 (None: OPTIM.MAX_EPOCH)."""

    init_alpha: float
    init_beta: float
    search_scale: tuple  # (beta_max, alpha_max)
    epochs: int = None


# Keyed by our DATASET.NAME; values from gaopengcuhk/Tip-Adapter configs/*.yaml.
PUBLISHED = {
    "ImageNet": PublishedSettings(1.17, 1.0, (7, 3)),
    "Caltech101": PublishedSettings(3.0, 1.0, (12, 5)),
    "DescribableTextures": PublishedSettings(2.0, 1.0, (13, 13)),
    "EuroSAT": PublishedSettings(2.0, 1.0, (12, 10), epochs=100),
    "FGVCAircraft": PublishedSettings(5.0, 1.0, (30, 30)),
    "Food101": PublishedSettings(1.17, 1.0, (10, 10)),
    "OxfordFlowers": PublishedSettings(10.0, 1.0, (50, 50)),
    "OxfordPets": PublishedSettings(1.17, 1.0, (7, 3)),
    "StanfordCars": PublishedSettings(3.0, 1.0, (20, 10)),
    "SUN397": PublishedSettings(1.17, 1.0, (12, 10)),
    "UCF101": PublishedSettings(3.0, 1.0, (7, 3)),
}
# Any other dataset (the simulated benchmark, ImageNet's test-only variants): the median of the
# 11 published values of each setting (alpha 2, beta 1, scale (12, 10)).
FALLBACK = PublishedSettings(2.0, 1.0, (12, 10))


def published_settings(dataset_name):
    """``(settings, True)`` for the 11 datasets of the paper, ``(FALLBACK, False)`` otherwise."""
    if dataset_name in PUBLISHED:
        return PUBLISHED[dataset_name], True
    return FALLBACK, False


def build_cache(views, labels, num_classes):
    """``views [V, N, d]`` raw features of V augmented views of the N few-shot images -> ``keys
    [N, d]`` (the L2-normalised mean over views, as the original averages before normalising)
    and ``values [N, C]`` (one-hot labels)."""
    keys = F.normalize(views.float().mean(dim=0), dim=-1)
    values = F.one_hot(labels, num_classes).float()
    return keys, values


def one_hot_labels(values):
    """The label of each cache entry when ``values [N, C]`` is one-hot (each row a single 1, zeros
    elsewhere), else None (the cache product then stays a dense matrix product)."""
    if values.dim() != 2 or values.shape[0] == 0:
        return None
    if not (((values == 0) | (values == 1)).all() and (values.sum(dim=1) == 1).all()):
        return None
    return values.argmax(dim=1)


def cache_logits(affinity, values, beta, labels=None):
    """``exp(-beta * (1 - affinity)) @ values``: ``affinity [B, N]`` = cosine to every key. With
    ``labels`` (``one_hot_labels(values)``, values one-hot) the product is the exact per-class sum
    of the weight columns; autograd flows through it (Tip-Adapter-F's learnable keys)."""
    weights = torch.exp(-beta * (1.0 - affinity))
    if labels is None:
        return weights @ values
    return weights.new_zeros(weights.shape[0], values.shape[1]).index_add(1, labels, weights)


@torch.no_grad()
def alpha_beta_correct_counts(f, labels, zero_shot, keys, values, alphas, betas, max_elements=2 ** 24):
    """``[len(betas), len(alphas)]`` int64: how many rows of ``f`` (normalised features, ``labels``)
    the Tip logits ``zero_shot + alpha * cache_logits(f @ keys^T, values, beta)`` classify right,
    for every grid point. Val rows are streamed in chunks of at most ``max_elements`` affinities
    (and logits), so peak memory depends on neither the grid nor the val size; the logits of each
    point are computed with the same float operations as the formula (exp, then alpha * cache + zero-shot)."""
    value_labels = one_hot_labels(values)
    num_alphas, num_classes = len(alphas), values.shape[1]
    alpha_column = torch.tensor(alphas, dtype=zero_shot.dtype, device=zero_shot.device)[:, None, None]
    counts = torch.zeros(len(betas), num_alphas, dtype=torch.long, device=zero_shot.device)
    rows = max(1, max_elements // max(keys.shape[0], num_alphas * num_classes))
    for start in range(0, len(labels), rows):
        gap = 1.0 - f[start:start + rows] @ keys.t()  # [b, N], reused by every beta
        chunk_labels, chunk_zero_shot = labels[start:start + rows], zero_shot[start:start + rows]
        weights = torch.empty_like(gap)
        cache = gap.new_empty(gap.shape[0], num_classes)
        logits = gap.new_empty(num_alphas, gap.shape[0], num_classes)
        for i, beta in enumerate(betas):
            torch.mul(gap, -beta, out=weights).exp_()
            if value_labels is None:
                torch.mm(weights, values, out=cache)
            else:
                cache.zero_().index_add_(1, value_labels, weights)
            torch.mul(alpha_column, cache, out=logits).add_(chunk_zero_shot)
            counts[i] += (logits.argmax(dim=-1) == chunk_labels).sum(dim=-1)
    return counts


class TipAdapterHead(nn.Module):
    """The whole Tip-Adapter model on frozen features: text prototypes, cache, alpha and beta.

    Keys are a parameter (trainable only for Tip-Adapter-F); values, text prototypes, alpha
    and beta are buffers, so a checkpoint holds everything evaluation needs. A checkpoint's
    cache may have any number of entries: ``load_state_dict`` takes its shapes.
    """

    def __init__(self, text_prototypes, logit_scale, keys, values, alpha, beta, learnable_keys=False):
        super().__init__()
        self.logit_scale = logit_scale
        self.register_buffer("text_prototypes", F.normalize(text_prototypes.float(), dim=-1))
        self.keys = nn.Parameter(keys.float().clone(), requires_grad=learnable_keys)
        self.register_buffer("values", values.float().clone())
        self.register_buffer("alpha", torch.tensor(float(alpha)))
        self.register_buffer("beta", torch.tensor(float(beta)))
        self._labels_of = (None, None)  # (the values tensor's identity, one_hot_labels of it)

    def value_labels(self):
        """``one_hot_labels(values)``, memoised while the values tensor stays the same one (a
        move to another device or ``load_state_dict`` recomputes it)."""
        identity = (self.values.data_ptr(), self.values.device, tuple(self.values.shape))
        if self._labels_of[0] != identity:
            self._labels_of = (identity, one_hot_labels(self.values))
        return self._labels_of[1]

    def set_alpha_beta(self, alpha, beta):
        self.alpha.fill_(float(alpha))
        self.beta.fill_(float(beta))

    def clip_logits(self, f):
        """Zero-shot CLIP's logits for normalised features ``f``."""
        return self.logit_scale * f @ self.text_prototypes.t()

    def affinity(self, f):
        return f @ self.keys.t()

    def forward(self, image_features, alpha=None, beta=None):
        """Tip logits of raw image features, with the stored alpha / beta unless given."""
        f = F.normalize(image_features.float(), dim=-1)
        alpha = self.alpha if alpha is None else alpha
        beta = self.beta if beta is None else beta
        return self.clip_logits(f) + alpha * cache_logits(self.affinity(f), self.values, beta, self.value_labels())

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Resize the cache (and the per-class tensors) to the checkpoint's, then load it."""
        for name in ("keys", "values", "text_prototypes"):
            tensor = getattr(self, name)
            if name in state_dict and state_dict[name].shape != tensor.shape:
                tensor.data = tensor.data.new_empty(state_dict[name].shape)
        self._labels_of = (None, None)  # the values are overwritten in place
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
