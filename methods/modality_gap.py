"""Modality-gap measurements between image features and class text prototypes.

- ``centroid_distance``: mean over classes of the distance between the class's image centroid
  and its text prototype (L2-normalised features);
- ``own_class_cosine``: mean cosine between an image and its own class's prototype;
- ``modality_gap``: Liang et al. (2022)'s gap, the norm of the difference between the mean
  image embedding and the mean text embedding.
"""
import torch
import torch.nn.functional as F


def gap_metrics(image_features, labels, prototypes):
    v, t = F.normalize(image_features.float(), dim=-1), F.normalize(prototypes.float(), dim=-1)
    classes = labels.unique()
    centroids = torch.stack([v[labels == c].mean(0) for c in classes])
    return {
        "centroid_distance": (centroids - t[classes]).norm(dim=1).mean().item(),
        "own_class_cosine": (v * t[labels]).sum(1).mean().item(),
        "modality_gap": (v.mean(0) - t.mean(0)).norm().item(),
    }
