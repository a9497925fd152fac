"""FLEX-CLIP's costs in one run: mAP@all on a 10k x 10k gallery (ours vs a per-query
scikit-learn loop, scripts/bench_retrieval_map.py), then the wall time of stage 1 and stage 2
from cached features at XMediaNet-like size on the simulated paired data (200 classes, 100
source classes x 320 pairs = 32k source pairs, X = 16 target pairs per class, 512-d).
``--demo`` instead runs FLEX-CLIP's 30 runs of ``make demo`` (configs/experiments/simulated.yaml:
both simulated datasets, shots 1/2/4/8/16, seeds 1/2/3, sim.yaml) one after another in this
process, prints each run's CPU time split into build / stage 1 / stage 2 + generation / test,
and the demo's FLEX-CLIP rows (mean ± population std over seeds, as the report prints them).

    python scripts/bench_flex_clip.py [--skip-map] [--steps 1000] [--epochs 30]
    python scripts/bench_flex_clip.py --demo [--config configs/trainers/FLEXCLIP/sim.yaml]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from scripts import bench_retrieval_map  # noqa: E402
from trainers.core import run as train  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-map", action="store_true", help="skip the 10k x 10k mAP comparison")
    parser.add_argument("--steps", type=int, default=1000, help="stage-1 generator steps (TRAINER.FLEXCLIP default)")
    parser.add_argument("--epochs", type=int, default=30, help="stage-2 epochs")
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--per-class", type=int, default=320, help="training pairs per class (source classes use all)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--demo", action="store_true", help="time FLEX-CLIP's runs of `make demo` instead")
    parser.add_argument("--config", default=os.path.join(REPO, "configs/trainers/FLEXCLIP/sim.yaml"),
                        help="--demo: the trainer config (the demo's sim.yaml)")
    args = parser.parse_args(argv)
    if args.demo:
        return bench_demo(args.config)

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


# the figure each run's log prints (accuracy: one decimal, mAP: two), which the demo's table averages
DEMO_DATASETS = {"simulated": ("accuracy (%)", 1), "simulated_pairs": ("mAP (%)", 2)}
DEMO_SHOTS, DEMO_SEEDS = (1, 2, 4, 8, 16), (1, 2, 3)
PHASES = ("build", "stage 1", "stage 2 + generation", "test")


def timed_run(argv):
    """One train.py run in this process: ``(test result, {phase: CPU seconds})``. CPU time of this
    process (FLEX-CLIP runs on one torch thread), so other jobs on the machine barely move it."""
    start = time.process_time()
    trainer = train.main(["--no-train", *argv], echo=False)
    phases = dict.fromkeys(PHASES, 0.0)
    phases["build"] = time.process_time() - start
    fit_stage1, test, result = trainer.fit_stage1, trainer.test, {}

    def timed(name, method):
        def run(*args, **kwargs):
            begin = time.process_time()
            value = method(*args, **kwargs)
            phases[name] += time.process_time() - begin
            return value
        return run

    def recorded_test(*args, **kwargs):
        result["value"] = test(*args, **kwargs)
        return result["value"]

    trainer.fit_stage1, trainer.test = timed("stage 1", fit_stage1), timed("test", recorded_test)
    begin = time.process_time()
    trainer.train()
    phases["stage 2 + generation"] = time.process_time() - begin - phases["stage 1"] - phases["test"]
    return result["value"], phases


def bench_demo(config):
    """The demo's FLEX-CLIP runs, their time split and their table rows."""
    results, totals = {}, {}
    for dataset, (_, decimals) in DEMO_DATASETS.items():
        totals[dataset] = dict.fromkeys(PHASES, 0.0)
        for shots in DEMO_SHOTS:
            for seed in DEMO_SEEDS:
                value, phases = timed_run([
                    "--root", "", "--seed", seed, "--trainer", "FLEXCLIP",
                    "--dataset-config-file", os.path.join(REPO, f"configs/datasets/{dataset}.yaml"),
                    "--config-file", config, "--output-dir", tempfile.mkdtemp(prefix="bench_flex_demo_"),
                    "DATASET.NUM_SHOTS", shots])
                results.setdefault((dataset, shots), []).append(round(value, decimals))
                for name, seconds in phases.items():
                    totals[dataset][name] += seconds
                print(f"{dataset:16s} {shots:2d} shots seed {seed}: {value:6.2f}  CPU s " +
                      "  ".join(f"{name} {seconds:5.2f}" for name, seconds in phases.items()), flush=True)
    for dataset, (metric, _) in DEMO_DATASETS.items():
        split = totals[dataset]
        print(f"\n{dataset}: {sum(split.values()):.1f} CPU s for {len(DEMO_SHOTS) * len(DEMO_SEEDS)} runs (" +
              ", ".join(f"{name} {seconds:.1f}" for name, seconds in split.items()) + f")\n{metric}: " +
              " | ".join(f"{shots}-shot {statistics.mean(results[dataset, shots]):.2f} ± "
                         f"{statistics.pstdev(results[dataset, shots]):.2f}" for shots in DEMO_SHOTS))
    print(f"\nall FLEX-CLIP demo runs: {sum(sum(split.values()) for split in totals.values()):.1f} CPU s")


if __name__ == "__main__":
    main()
