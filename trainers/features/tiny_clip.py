"""A tiny open_clip model with random weights (configs/models/TinyCLIP.json): the stand-in for
real CLIP weights in the tests and the benchmarks, which run offline."""
from pathlib import Path

import open_clip
import torch

TINY_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "models" / "TinyCLIP.json"


def save_tiny_clip(path, seed):
    """Random tiny open_clip weights at ``path`` (seeded, so the same file on every machine)."""
    open_clip.add_model_config(str(TINY_CONFIG))
    torch.manual_seed(seed)
    model = open_clip.create_model("TinyCLIP", pretrained=None)
    torch.save(model.state_dict(), path)
    return path


def tiny_clip_args(weights, root, out, *opts, flags=(), trainer="ZeroshotCLIP", seed=1, backbone=TINY_CONFIG):
    """train.py arguments that run ``trainer`` with the tiny model (``weights``; or ``backbone``) on
    the DTD copy under ``root`` (``datasets.synthetic_dtd``); flags come before the KEY VALUE ``opts``."""
    repo = TINY_CONFIG.parents[2]
    return [
        *flags, "--root", str(root), "--seed", str(seed), "--trainer", trainer,
        "--dataset-config-file", str(repo / "configs/datasets/dtd.yaml"),
        "--backbone", str(backbone), "--output-dir", str(out),
        "CLIP.PRETRAINED", str(weights),
        "INPUT.SIZE", "(32, 32)", "INPUT.INTERPOLATION", "bicubic",
        "INPUT.PIXEL_MEAN", "[0.48145466, 0.4578275, 0.40821073]",
        "INPUT.PIXEL_STD", "[0.26862954, 0.26130258, 0.27577711]",
        "INPUT.TRANSFORMS", '["normalize"]',
        "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TEST.BATCH_SIZE", "8",
        *opts,
    ]
