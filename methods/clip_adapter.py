"""CLIP-Adapter (Gao et al., 2021): a bottleneck MLP on the frozen image feature, mixed back
into it residually; the mixed feature is classified by cosine against the text prototypes."""
from torch import nn

from .zero_shot import clip_logits


class Adapter(nn.Module):
    """Linear d -> d/r (no bias), ReLU, Linear d/r -> d (no bias), ReLU: the original's module,
    with the same state-dict keys (``fc.0.weight``, ``fc.2.weight``)."""

    def __init__(self, dim, reduction=4):
        super().__init__()
        if reduction < 1 or dim // reduction < 1:
            raise ValueError(f"the adapter's reduction must be between 1 and the feature dimension {dim}, "
                             f"got {reduction}")
        hidden = dim // reduction
        self.fc = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(hidden, dim, bias=False), nn.ReLU(inplace=True))

    def forward(self, features):
        return self.fc(features)


def adapted_features(adapter, features, ratio):
    """``ratio * adapter(x) + (1 - ratio) * x`` on the raw (unnormalised) image feature."""
    return ratio * adapter(features) + (1.0 - ratio) * features


def adapter_logits(adapter, features, prototypes, ratio, logit_scale):
    """``logit_scale * norm(mixed) @ prototypes.T`` (prototypes already normalised)."""
    return clip_logits(adapted_features(adapter, features, ratio), prototypes, logit_scale)
