"""Wall time of one CMM run, split into feature extraction and training from the feature cache.

    python scripts/bench_cmm.py                      # simulated benchmark + tiny CLIP on generated images
    python scripts/bench_cmm.py --backbone RN50      # the real RN50 architecture (random weights, 224 px)

On images the phases are: encoding the test split and the prompts (cold cache), encoding the
augmented views of the few-shot images (cold), then training + testing with every feature
read back from the cache (what every later seed, shot count or hyper-parameter costs).
"""
import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from datasets.synthetic_dtd import write_dtd  # noqa: E402
from trainers.core import run as train  # noqa: E402
from trainers.features.tiny_clip import TINY_CONFIG, save_tiny_clip  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench(name, argv):
    """Times of: building (data + eval/text features), train views, training (+ test)."""
    trainer, build = timed(lambda: train.main(["--no-train", *argv], echo=False))
    _, views = timed(trainer.augmented_train_features)
    _, fit = timed(lambda: train.main(argv, echo=False))
    n = len(trainer.dataset.train_x)
    print(f"{name}: {n} few-shot images, {trainer.cfg.FEATURES.AUG_VIEWS} views, "
          f"{trainer.cfg.OPTIM.MAX_EPOCH} epochs")
    print(f"  extraction  test split + prompts {build:7.2f} s | train views {views:7.2f} s")
    print(f"  training    from the cache (incl. final test) {fit:7.2f} s "
          f"= {fit / max(build + views, 1e-9):.2f} x the extraction")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="tiny", help="tiny, or an open_clip/CoOp name built with random weights")
    parser.add_argument("--classes", type=int, default=8, help="classes of the generated image dataset")
    parser.add_argument("--per-class", type=int, default=24)
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="bench_cmm_")
    os.environ["FEWSHOT_CLIP_CACHE"] = os.path.join(work, "cache")
    common = ["--seed", "1", "--trainer", "CMM", "--config-file", os.path.join(REPO, "configs/trainers/CMM/sim.yaml")]
    bench("simulated benchmark", common + [
        "--root", "", "--dataset-config-file", os.path.join(REPO, "configs/datasets/simulated.yaml"),
        "--output-dir", os.path.join(work, "sim"), "DATASET.NUM_SHOTS", str(args.shots),
        "OPTIM.MAX_EPOCH", str(args.epochs)])

    root = os.path.join(work, "data")
    write_dtd(root, per_class=args.per_class, num_classes=args.classes, size=(256, 240))
    if args.backbone == "tiny":
        backbone, weights, size = str(TINY_CONFIG), save_tiny_clip(os.path.join(work, "tiny.pt"), seed=0), 32
    else:
        backbone, weights, size = args.backbone, "none", 224
    bench(f"generated images, backbone {args.backbone}", common + [
        "--root", root, "--dataset-config-file", os.path.join(REPO, "configs/datasets/dtd.yaml"),
        "--backbone", backbone, "--output-dir", os.path.join(work, "img"),
        "DATASET.NUM_SHOTS", str(min(args.shots, args.per_class // 2)), "OPTIM.MAX_EPOCH", str(args.epochs),
        "CLIP.PRETRAINED", str(weights), "INPUT.SIZE", f"({size}, {size})", "INPUT.INTERPOLATION", "bicubic",
        "INPUT.TRANSFORMS", '["normalize"]', "INPUT.PIXEL_MEAN", "[0.48145466, 0.4578275, 0.40821073]",
        "INPUT.PIXEL_STD", "[0.26862954, 0.26130258, 0.27577711]", "DATALOADER.NUM_WORKERS", "2",
        "DATALOADER.TEST.BATCH_SIZE", "64", "DATALOADER.TRAIN_X.BATCH_SIZE", "64", "TRAINER.CMM.TEMPLATES", "custom"])
    print(f"(work folder {work})")


if __name__ == "__main__":
    main()
