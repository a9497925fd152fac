"""PKU XMediaNet (Peng et al., 2018): 200 categories of images, texts, videos, audio and 3D
models; its images and texts are read through the manifest: docs/RETRIEVAL_DATASETS.md says how to
write ``xmedianet/manifest.jsonl`` from the release's lists."""
from .manifest import ManifestPairs
from .registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class XMediaNet(ManifestPairs):
    folder = "xmedianet"
