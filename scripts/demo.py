"""The embedded default: every feature-level trainer on the simulated benchmark, shots 1/2/4/8/16
x seeds 1/2/3, in CoOp's folder layout, then the results table.

    python scripts/demo.py [--output output/demo] [--trainers ZeroshotCLIP ...] [--shots 1 2 4 8 16]

Finished runs are skipped; a folder without a result (a run that died) is deleted and rerun,
never appended to. Each run's full log is ``<run>/log.txt``.
"""
import argparse
import os
import sys
import time

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scripts.results import collect, shots_table  # noqa: E402
from scripts.runner import run_if_needed  # noqa: E402  (imports train: registers datasets and trainers)
from trainers.registry import TRAINER_REGISTRY  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET = "simulated"
CFG = "sim"


def feature_level_trainers():
    return [cls.__name__ for cls in TRAINER_REGISTRY.classes() if cls.feature_level]


def run_dir(output, trainer, shots, seed):
    return os.path.join(output, DATASET, trainer, f"{CFG}_{shots}shots", f"seed{seed}")


def train_argv(trainer, shots, seed):
    argv = ["--root", "", "--seed", str(seed), "--trainer", trainer,
            "--dataset-config-file", os.path.join(REPO, "configs", "datasets", f"{DATASET}.yaml")]
    method_cfg = os.path.join(REPO, "configs", "trainers", trainer, f"{CFG}.yaml")
    if os.path.isfile(method_cfg):
        argv += ["--config-file", method_cfg]
    return argv + ["DATASET.NUM_SHOTS", str(shots)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=os.path.join("output", "demo"))
    parser.add_argument("--trainers", nargs="+", default=feature_level_trainers())
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--format", default="github", help="table format (tabulate): github, plain, latex, ...")
    args = parser.parse_args(argv)

    runs = [(t, k, s) for t in args.trainers for k in args.shots for s in args.seeds]
    start, done, skipped = time.time(), 0, 0
    print(f"Simulated benchmark: {len(args.trainers)} trainer(s) x {len(args.shots)} shot counts x "
          f"{len(args.seeds)} seeds = {len(runs)} runs under {args.output}")
    for trainer, shots, seed in tqdm(runs, desc="runs", unit="run"):
        if run_if_needed(train_argv(trainer, shots, seed), run_dir(args.output, trainer, shots, seed)):
            done += 1
        else:
            skipped += 1
    values, unfinished = collect(os.path.join(args.output))
    print(f"\n{done} run(s) done, {skipped} already finished, {time.time() - start:.1f}s. Top-1 accuracy (%) "
          "on the simulated benchmark, mean ± std over seeds (number of seeds):\n")
    print(shots_table(values, args.format, compact=True))
    if unfinished:
        print("\nUnfinished run folders:\n" + "\n".join(f"  {p}" for p in unfinished))


if __name__ == "__main__":
    main()
