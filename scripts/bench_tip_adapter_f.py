"""Benchmark: Tip-Adapter-F trained from the feature cache vs. the original's re-encoding loop.

    python scripts/bench_tip_adapter_f.py [--classes 10] [--shots 16] [--epochs 20] [--image-size 64]
        [--backbone configs/models/TinyCLIP.json | RN50 ...] [--input-size 32] [--workers 0] [--threads 0]

On a generated image dataset (CoOp's DescribableTextures layout) with the tiny random CLIP model
of the test suite (or any open_clip backbone with random weights: ``--backbone RN50 --input-size
224``), one run times Tip-Adapter-F's training three ways, with the same head, optimizer, schedule,
batch size and epochs:

  cached, cold   the trainer's own path with an empty feature cache: encode the view bank once
                 (the cache keys and the training views), then every epoch reads cached features;
  cached, warm   the same with the views already in the feature cache;
  reference      the original code: encode the cache views, then every epoch re-augments the
                 images (RandomResizedCrop 0.5-1 + flip) and re-encodes them with CLIP.

It prints the three wall times and the reference / cached ratios, plus each model's test
accuracy (initial alpha / beta) as a sanity check. Defaults finish in about a minute on 2 CPU cores.
"""
import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datasets.image_loading import ImageViews  # noqa: E402
from datasets.transforms import augment_transform  # noqa: E402
from methods.tip_adapter import CACHE_AUG_SCALE, build_cache  # noqa: E402
from trainers.core.run import main as run_train  # noqa: E402
from trainers.features.tiny_clip import TINY_CONFIG, save_tiny_clip, tiny_clip_args  # noqa: E402


def write_dataset(root, classes, shots, image_size, val=4, test=4):
    """``classes`` x (shots + val + test) coloured-noise JPEGs and a split_zhou file (DTD layout)."""
    rng = np.random.default_rng(0)
    base = Path(root) / "dtd"
    split = {"train": [], "val": [], "test": []}
    for label in range(classes):
        name = f"class{label:03d}"
        (base / "images" / name).mkdir(parents=True, exist_ok=True)
        for i in range(shots + val + test):
            pixels = rng.integers(0, 80, (image_size, image_size, 3), dtype=np.uint8)
            pixels[..., label % 3] += np.uint8(100 + 70 * label // classes)
            rel = f"{name}/{i:04d}.jpg"
            Image.fromarray(pixels).save(base / "images" / rel)
            part = "train" if i < shots else "val" if i < shots + val else "test"
            split[part].append([rel, label, name])
    (base / "split_zhou_DescribableTextures.json").write_text(json.dumps(split))


def build_trainer(args, model, root, work, cache_name, out_name):
    opts = ["DATASET.NUM_SHOTS", args.shots, "FEATURES.CACHE_DIR", work / cache_name,
            "OPTIM.NAME", "adamw", "OPTIM.LR", 0.001, "OPTIM.WEIGHT_DECAY", 0.01, "OPTIM.MAX_EPOCH", args.epochs,
            "DATALOADER.TRAIN_X.BATCH_SIZE", args.batch_size, "DATALOADER.NUM_WORKERS", args.workers,
            "DATALOADER.TEST.BATCH_SIZE", 256, "INPUT.SIZE", f"({args.input_size}, {args.input_size})",
            "TRAINER.TIPADAPTER.AUGMENT_EPOCH", args.views, "TRAINER.TIPADAPTER.EPOCHS", args.epochs]
    argv = tiny_clip_args(model.weights, root, work / out_name, *opts, flags=["--no-train"], trainer="TipAdapterF",
                          backbone=model.config)
    return run_train([str(a) for a in argv], echo=False)


def train_cached(trainer):
    """The trainer's own training: view bank (encoded or read), then epochs over cached views."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.before_train()
        for trainer.epoch in range(trainer.max_epoch):
            trainer.run_epoch()
    return time.perf_counter() - start, trainer.head


def train_reference(trainer):
    """The original's loop: cache from the encoded views, then fresh crops encoded every epoch."""
    cfg = trainer.cfg
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        views = trainer.cache_views()
    keys, values = build_cache(views.features, views.labels, trainer.num_classes)
    head = trainer.new_head(keys, values, learnable_keys=True)
    transform = augment_transform(cfg.INPUT, CACHE_AUG_SCALE, flip=True)[0]
    items = trainer.split_items("train")
    images = ImageViews([item.impath for item in items], [(transform, None)])  # unseeded: fresh every epoch
    labels = trainer.labels_of(items).to(trainer.device)
    loader = DataLoader(images, batch_size=cfg.DATALOADER.TRAIN_X.BATCH_SIZE, shuffle=True,
                        num_workers=cfg.DATALOADER.NUM_WORKERS)
    optim = torch.optim.AdamW([head.keys], lr=cfg.OPTIM.LR, eps=1e-4, weight_decay=cfg.OPTIM.WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, trainer.max_epoch * len(loader))
    model = trainer.features.model()
    head.train()
    for _ in range(trainer.max_epoch):
        for batch, index in loader:
            with torch.no_grad(), trainer.features.autocast():
                features = model.encode_image(batch[:, 0].to(trainer.device)).float()
            loss = F.cross_entropy(head(features), labels[index.to(trainer.device)])
            optim.zero_grad()
            loss.backward()
            optim.step()
            sched.step()
    return time.perf_counter() - start, head


@torch.no_grad()
def test_accuracy(trainer, head):
    test = trainer.split_features("test")
    logits = head.eval()(test.features.to(trainer.device))
    return 100.0 * (logits.argmax(1).cpu() == test.labels).float().mean().item()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--views", type=int, default=10, help="cache views per image (AUGMENT_EPOCH)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=64, help="side of the generated JPEGs")
    parser.add_argument("--backbone", default=str(TINY_CONFIG),
                        help="open_clip config JSON or model name; not the tiny model: random weights")
    parser.add_argument("--input-size", type=int, default=32, help="the backbone's input size (INPUT.SIZE)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for image decoding")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_dataset(work / "data", args.classes, args.shots, args.image_size)
        tiny = args.backbone == str(TINY_CONFIG)
        weights = str(save_tiny_clip(work / "tiny.pt", seed=0)) if tiny else "none"
        model = SimpleNamespace(config=args.backbone, weights=weights)
        cold = build_trainer(args, model, work / "data", work, "cache_a", "cold")
        cold_s, cold_head = train_cached(cold)
        warm = build_trainer(args, model, work / "data", work, "cache_a", "warm")
        warm_s, warm_head = train_cached(warm)
        ref = build_trainer(args, model, work / "data", work, "cache_b", "reference")
        ref_s, ref_head = train_reference(ref)
        images = args.classes * args.shots
        print(f"Tip-Adapter-F, {images} training images ({args.classes} classes x {args.shots} shots), "
              f"{args.views} cache views, {args.epochs} epochs, batch {args.batch_size}, backbone {args.backbone}, "
              f"device {cold.device}, {torch.get_num_threads()} thread(s)")
        print(f"cached, cold (encode {args.views} views once): {cold_s:8.2f} s   "
              f"test acc {test_accuracy(cold, cold_head):.1f}%")
        print(f"cached, warm (views read from the cache):  {warm_s:8.2f} s   "
              f"test acc {test_accuracy(warm, warm_head):.1f}%")
        print(f"reference (re-encode every epoch):          {ref_s:8.2f} s   "
              f"test acc {test_accuracy(ref, ref_head):.1f}%")
        print(f"reference / cached: {ref_s / cold_s:.1f}x (cold), {ref_s / warm_s:.1f}x (warm)")


if __name__ == "__main__":
    main()
