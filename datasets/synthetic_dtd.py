"""A small DescribableTextures copy in CoOp's layout with synthetic images (images/<class>/*.jpg
and split_zhou_DescribableTextures.json), for the tests and the benchmarks, which have no data."""
import json
from pathlib import Path

import numpy as np
from PIL import Image

DTD_CLASSES = ["banded", "blotchy", "braided", "bubbly"]


def write_dtd(root, per_class=10, size=(40, 36), num_classes=len(DTD_CLASSES)):
    """``root``/dtd with ``per_class`` images per class (half train, a fifth val, the rest test).
    Class colours differ, so features differ; the images are the same on every machine."""
    rng = np.random.default_rng(0)
    base = Path(root) / "dtd"
    split = {"train": [], "val": [], "test": []}
    names = (DTD_CLASSES + [f"texture_{i:03d}" for i in range(num_classes)])[:num_classes]
    n_train, n_val = per_class // 2, per_class // 5
    for label, name in enumerate(names):
        (base / "images" / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
            pixels[..., label % 3] += np.uint8(150 + (20 * (label // 3)) % 100)
            rel = f"{name}/{name}_{i:04d}.jpg"
            Image.fromarray(pixels).save(base / "images" / rel)
            part = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            split[part].append([rel, label, name])
    (base / "split_zhou_DescribableTextures.json").write_text(json.dumps(split))
    return base
