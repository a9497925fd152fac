"""NUS-WIDE-10k (Feng et al., ACM MM 2014): 10,000 Flickr image-tag pairs of NUS-WIDE (Chua et al.,
2009), 1,000 in each of its 10 largest single-label concepts. No image-text release exists (the
published copies are features), so it is read through the manifest: docs/RETRIEVAL_DATASETS.md
says how to write ``nus_wide_10k/manifest.jsonl`` from the NUS-WIDE files."""
from .manifest import ManifestPairs
from .registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class NUSWIDE10k(ManifestPairs):
    folder = "nus_wide_10k"
