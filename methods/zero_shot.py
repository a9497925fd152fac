"""Zero-shot CLIP: class prototypes from prompt embeddings, and cosine logits."""
import torch.nn.functional as F


def class_prototypes(text_features):
    """``[C, T, d]`` prompt embeddings -> ``[C, d]``: L2-normalise each template's embedding,
    average over templates, L2-normalise again (CLIP / CoOp prompt ensembling)."""
    return F.normalize(F.normalize(text_features, dim=-1).mean(dim=1), dim=-1)


def clip_logits(image_features, prototypes, logit_scale):
    """``logit_scale * norm(image) @ prototypes.T`` (prototypes already normalised)."""
    return logit_scale * F.normalize(image_features, dim=-1) @ prototypes.t()
