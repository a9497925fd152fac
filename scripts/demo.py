"""The embedded default: every feature-level trainer on the simulated benchmarks, shots 1/2/4/8/16
x seeds 1/2/3, in CoOp's folder layout, then the results tables:
- few-shot classification on ``simulated`` (top-1 accuracy), every feature-level trainer;
- few-shot cross-modal retrieval on ``simulated_pairs`` (mAP@all over image->text and
  text->image on the target classes), the trainers that do retrieval (ZeroshotCLIP, FLEXCLIP).

    python scripts/demo.py [--output output/demo] [--trainers CMM ...] [--shots 1 16] [--tasks classification]

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
CFG = "sim"
# task -> (dataset, metric, which trainers take part)
TASKS = {
    "classification": ("simulated", "accuracy", lambda cls: cls.feature_level),
    "retrieval": ("simulated_pairs", "mAP", lambda cls: cls.feature_level and cls.supports_retrieval),
}


def run_dir(output, dataset, trainer, shots, seed):
    return os.path.join(output, dataset, trainer, f"{CFG}_{shots}shots", f"seed{seed}")


def train_argv(dataset, trainer, shots, seed):
    argv = ["--root", "", "--seed", str(seed), "--trainer", trainer,
            "--dataset-config-file", os.path.join(REPO, "configs", "datasets", f"{dataset}.yaml")]
    method_cfg = os.path.join(REPO, "configs", "trainers", trainer, f"{CFG}.yaml")
    if os.path.isfile(method_cfg):
        argv += ["--config-file", method_cfg]
    return argv + ["DATASET.NUM_SHOTS", str(shots)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=os.path.join("output", "demo"))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--trainers", nargs="+", help="restrict to these trainers (default: all that apply)")
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--format", default="github", help="table format (tabulate): github, plain, latex, ...")
    args = parser.parse_args(argv)

    runs = []
    for task in args.tasks:
        dataset, _, takes_part = TASKS[task]
        trainers = [cls.__name__ for cls in TRAINER_REGISTRY.classes() if takes_part(cls)]
        trainers = [t for t in trainers if not args.trainers or t in args.trainers]
        runs += [(dataset, t, k, s) for t in trainers for k in args.shots for s in args.seeds]
    start, done, skipped = time.time(), 0, 0
    print(f"Simulated benchmarks ({', '.join(args.tasks)}): {len(runs)} runs under {args.output}")
    for dataset, trainer, shots, seed in tqdm(runs, desc="runs", unit="run"):
        out = run_dir(args.output, dataset, trainer, shots, seed)
        if run_if_needed(train_argv(dataset, trainer, shots, seed), out):
            done += 1
        else:
            skipped += 1
    print(f"\n{done} run(s) done, {skipped} already finished, {time.time() - start:.1f}s.")
    for task in args.tasks:
        dataset, metric, _ = TASKS[task]
        values, unfinished = collect(os.path.join(args.output, dataset), metric=metric)
        print(f"\n{task.capitalize()} on {dataset}: {metric} (%), mean ± std over seeds (number of seeds):\n")
        print(shots_table(values, args.format, compact=True))
        if unfinished:
            print("\nUnfinished run folders:\n" + "\n".join(f"  {p}" for p in unfinished))


if __name__ == "__main__":
    main()
