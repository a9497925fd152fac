"""CMM's ablation grid on one dataset: the full method and one switch off at a time, over seeds,
printed as one table (accuracy, change from the full method, modality gap before -> after).

    python scripts/cmm/ablation.py                                   # the simulated benchmark
    python scripts/cmm/ablation.py --dataset dtd --cfg rn50 --root $DATA --shots 16

Runs go to output/<dataset>/CMM/<cfg>_<K>shots/ablation_<variant>/seed<S> (finished runs skipped).
"""
import argparse
import json
import os
import sys

import numpy as np
from tabulate import tabulate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from scripts.results import read_metrics  # noqa: E402
from scripts.runner import run_if_needed  # noqa: E402

# variant -> overrides; each turns one of the paper's ingredients off (spec: shared/specs/cmm.md)
VARIANTS = {
    "full": [],
    "no_triplet": ["TRAINER.CMM.LAMBDA", "0.0", "TRAINER.CMM.SEARCH_LAMBDA", "[0.0]"],
    "no_residual": ["TRAINER.CMM.RESIDUAL", "False"],
    "frozen_prototypes": ["TRAINER.CMM.TRAIN_PROTOTYPES", "False"],
    "no_fusion": ["TRAINER.CMM.FUSION", "False"],
    "random_negative": ["TRAINER.CMM.NEGATIVE", "random"],
    "cosine_distance": ["TRAINER.CMM.DISTANCE", "cosine"],
}


def run_folder(args, variant, seed):
    return os.path.join(args.output, args.dataset, "CMM", f"{args.cfg}_{args.shots}shots",
                        f"ablation_{variant}", f"seed{seed}")


def summarise(folders):
    """(accuracies, mean gap before, mean gap after) of finished seed folders."""
    accs = [read_metrics(os.path.join(f, "log.txt"))["accuracy"] for f in folders]
    gaps = [json.load(open(os.path.join(f, "modality_gap.json"))) for f in folders]
    before = np.mean([g["before"]["modality_gap"] for g in gaps])
    after = np.mean([g["after"]["modality_gap"] for g in gaps])
    return accs, before, after


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="simulated")
    parser.add_argument("--cfg", default="sim", help="configs/trainers/CMM/<cfg>.yaml")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--root", default="", help="datasets root (DATA)")
    parser.add_argument("--output", default="output")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--format", default="github")
    args = parser.parse_args(argv)

    rows, full_mean = [], None
    for variant in args.variants:
        folders = []
        for seed in args.seeds:
            folder = run_folder(args, variant, seed)
            run_if_needed(["--root", args.root, "--seed", str(seed), "--trainer", "CMM",
                           "--dataset-config-file", os.path.join(REPO, "configs", "datasets", f"{args.dataset}.yaml"),
                           "--config-file", os.path.join(REPO, "configs", "trainers", "CMM", f"{args.cfg}.yaml"),
                           "DATASET.NUM_SHOTS", str(args.shots), *VARIANTS[variant]], folder)
            folders.append(folder)
            print(f"{variant} seed {seed}: {read_metrics(os.path.join(folder, 'log.txt'))['accuracy']:.1f}%")
        accs, before, after = summarise(folders)
        mean = float(np.mean(accs))
        full_mean = mean if variant == "full" else full_mean
        delta = "" if full_mean is None or variant == "full" else f"{mean - full_mean:+.2f}"
        rows.append([variant, f"{mean:.2f} ± {np.std(accs):.2f} ({len(accs)})", delta, f"{before:.3f} -> {after:.3f}"])
    print(f"\nCMM ablations on {args.dataset}, {args.shots} shots, cfg {args.cfg} (mean ± std over seeds)\n")
    print(tabulate(rows, headers=["variant", "accuracy (%)", "vs full", "modality gap (test)"], tablefmt=args.format,
                   disable_numparse=True))


if __name__ == "__main__":
    main()
