"""Shared fixtures: the repo on sys.path, an isolated feature cache, the tiny CLIP model,
a small image dataset in CoOp's DescribableTextures layout, and an in-process train.py."""
import json
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"  # no test may try the network

import open_clip  # noqa: E402

TINY_CONFIG = ROOT / "tests" / "assets" / "TinyCLIP.json"
DTD_CLASSES = ["banded", "blotchy", "braided", "bubbly"]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own feature cache (never ~/.cache)."""
    monkeypatch.setenv("FEWSHOT_CLIP_CACHE", str(tmp_path / "fewshot_clip_cache"))


def save_tiny_clip(path, seed):
    """Random tiny open_clip weights (the suite's stand-in for real CLIP weights)."""
    open_clip.add_model_config(str(TINY_CONFIG))
    torch.manual_seed(seed)
    model = open_clip.create_model("TinyCLIP", pretrained=None)
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_clip")
    return SimpleNamespace(config=str(TINY_CONFIG),
                           weights=str(save_tiny_clip(folder / "tiny_a.pt", seed=0)),
                           other_weights=str(save_tiny_clip(folder / "tiny_b.pt", seed=1)))


def write_dtd(root, per_class=10, size=(40, 36), num_classes=len(DTD_CLASSES)):
    """A DescribableTextures copy in CoOp's layout: images/<class>/*.jpg + split_zhou JSON
    (per class: half train, a fifth val, the rest test). Class colours differ so features differ."""
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


@pytest.fixture
def dtd_root(tmp_path):
    root = tmp_path / "data"
    write_dtd(root)
    return root


def tiny_args(tiny_clip, root, out, *opts, flags=(), trainer="ZeroshotCLIP", seed=1, weights=None):
    """train.py arguments for the tiny model on the DTD copy (flags before KEY VALUE opts)."""
    return [
        *flags, "--root", str(root), "--seed", str(seed), "--trainer", trainer,
        "--dataset-config-file", str(ROOT / "configs/datasets/dtd.yaml"),
        "--backbone", tiny_clip.config, "--output-dir", str(out),
        "CLIP.PRETRAINED", weights or tiny_clip.weights,
        "INPUT.SIZE", "(32, 32)", "INPUT.INTERPOLATION", "bicubic",
        "INPUT.PIXEL_MEAN", "[0.48145466, 0.4578275, 0.40821073]",
        "INPUT.PIXEL_STD", "[0.26862954, 0.26130258, 0.27577711]",
        "INPUT.TRANSFORMS", '["normalize"]',
        "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TEST.BATCH_SIZE", "8",
        *opts,
    ]


def run_train(argv):
    """train.py's main in this process, quiet on the console; returns the trainer."""
    import train

    return train.main([str(a) for a in argv], echo=False)


def read_log(out):
    return (Path(out) / "log.txt").read_text()


def coop_parse(log_text, end_signal="Finish training", keyword="accuracy"):
    """What CoOp's parse_test_res.py extracts: the metric after the end signal line."""
    good_to_go, value = False, None
    for line in log_text.splitlines():
        line = line.strip()
        if line == end_signal:
            good_to_go = True
        match = re.search(rf"\* {keyword}: ([\.\deE+-]+)%", line)
        if match and good_to_go:
            value = float(match.group(1))
    return value


RESULT_BLOCK = re.compile(
    r"^=> result\n"
    r"\* total: (?P<total>[\d,]+)\n"
    r"\* correct: (?P<correct>[\d,]+)\n"
    r"\* accuracy: (?P<acc>\d+\.\d)%\n"
    r"\* error: (?P<err>\d+\.\d)%\n"
    r"\* macro_f1: (?P<f1>\d+\.\d)%$",
    re.M,
)
