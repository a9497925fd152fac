"""FLEX-CLIP's costs in one run: mAP@all on a 10k x 10k gallery (ours vs a per-query
scikit-learn loop, scripts/bench_retrieval_map.py), then the wall time of stage 1 and stage 2
from cached features at XMediaNet-like size on the simulated paired data (200 classes, 100
source classes x 320 pairs = 32k source pairs, X = 16 target pairs per class, 512-d).

    python scripts/bench_flex_clip.py [--skip-map] [--steps 1000] [--epochs 30]
"""
import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import train  # noqa: E402
from scripts import bench_retrieval_map  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-map", action="store_true", help="skip the 10k x 10k mAP comparison")
    parser.add_argument("--steps", type=int, default=1000, help="stage-1 generator steps (TRAINER.FLEXCLIP default)")
    parser.add_argument("--epochs", type=int, default=30, help="stage-2 epochs")
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--per-class", type=int, default=320, help="training pairs per class (source classes use all)")
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args(argv)

    if not args.skip_map:
        print("== mAP@all, 10k x 10k gallery")
        bench_retrieval_map.main([])

    print(f"\n== FLEX-CLIP stages, simulated pairs: {args.classes} classes, {args.per_class} pairs per class, "
          f"{args.dim}-d, 16 target shots")
    argv = ["--no-train", "--root", "", "--seed", "1", "--trainer", "FLEXCLIP",
            "--dataset-config-file", os.path.join(REPO, "configs/datasets/simulated_pairs.yaml"),
            "--config-file", os.path.join(REPO, "configs/trainers/FLEXCLIP/rn50.yaml"),
            "--output-dir", tempfile.mkdtemp(prefix="bench_flex_"), "DATASET.NUM_SHOTS", "16",
            "DATASET.SIMULATED_PAIRS.NUM_CLASSES", str(args.classes),
            "DATASET.SIMULATED_PAIRS.TRAIN_PER_CLASS", str(args.per_class),
            "DATASET.SIMULATED_PAIRS.TEST_PER_CLASS", "20", "DATASET.SIMULATED_PAIRS.DIM", str(args.dim),
            "TRAINER.FLEXCLIP.STAGE1_STEPS", str(args.steps), "OPTIM.MAX_EPOCH", str(args.epochs)]
    start = time.perf_counter()
    trainer = train.main(argv, echo=False)
    built = time.perf_counter()
    stage1 = {}
    fit_stage1 = trainer.fit_stage1

    def timed_fit_stage1(*data):
        begin = time.perf_counter()
        fit_stage1(*data)
        stage1["seconds"] = time.perf_counter() - begin

    trainer.fit_stage1 = timed_fit_stage1
    trainer.train()
    total = time.perf_counter() - built
    pairs = len(trainer.dataset.train_x)
    print(f"build (data, test features)    {built - start:8.1f} s")
    print(f"stage 1 (VAE-GAN)              {stage1['seconds']:8.1f} s  "
          f"({args.steps} generator steps, {pairs:,} real pairs)")
    print(f"stage 2 + generation + test    {total - stage1['seconds']:8.1f} s  ({args.epochs} epochs), "
          f"device {trainer.device}")

if __name__ == "__main__":
    main()
