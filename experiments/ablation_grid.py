"""Shared by the ablation scripts: run named variants of a method over seeds (CoOp layout,
finished runs skipped) and summarise each variant's test metric."""
import os

import numpy as np

from experiments.runner import run_if_needed
from trainers.core.run_log import read_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def add_arguments(parser, default_dataset):
    parser.add_argument("--dataset", default=default_dataset)
    parser.add_argument("--cfg", default="sim", help="configs/trainers/<Trainer>/<cfg>.yaml")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--root", default="", help="datasets root (DATA)")
    parser.add_argument("--output", default="output")
    parser.add_argument("--format", default="github")


def run_variant(args, name, trainer, overrides):
    """The seed folders of one variant, ``<dataset>/<trainer>/<cfg>_<K>shots/ablation_<name>/seed<S>``."""
    folders = []
    method_cfg = os.path.join(REPO, "configs", "trainers", trainer, f"{args.cfg}.yaml")
    for seed in args.seeds:
        folder = os.path.join(args.output, args.dataset, trainer, f"{args.cfg}_{args.shots}shots",
                              f"ablation_{name}", f"seed{seed}")
        argv = ["--root", args.root, "--seed", str(seed), "--trainer", trainer,
                "--dataset-config-file", os.path.join(REPO, "configs", "datasets", f"{args.dataset}.yaml")]
        if os.path.isfile(method_cfg):
            argv += ["--config-file", method_cfg]
        run_if_needed(argv + ["DATASET.NUM_SHOTS", str(args.shots), *overrides], folder)
        print(f"{name} seed {seed}: {test_metric(folder):.2f}")
        folders.append(folder)
    return folders


def metric_name(folder):
    """``accuracy`` for a classification run, ``mAP`` for a retrieval one."""
    return "accuracy" if "accuracy" in read_metrics(os.path.join(folder, "log.txt")) else "mAP"


def test_metric(folder):
    return read_metrics(os.path.join(folder, "log.txt"))[metric_name(folder)]


def summary_cells(folders, reference_mean=None):
    """``mean ± std (n)`` and the change from the reference variant's mean."""
    values = [test_metric(f) for f in folders]
    mean = float(np.mean(values))
    delta = "" if reference_mean is None else f"{mean - reference_mean:+.2f}"
    return mean, f"{mean:.2f} ± {np.std(values):.2f} ({len(values)})", delta
