"""What a dry run shows: the run list with each run's state, and the feature extraction the
unfinished runs imply (per dataset and backbone: the splits and few-shot lists to encode)."""
import json
import os
from collections import defaultdict

import yaml

from trainers.core.registry import TRAINER_REGISTRY
from trainers.core.run import current_status

from .prerequisites import dataset_class, needs_files


def run_state(run, root):
    status = current_status(run.out, run.argv(root), run.end_signal)
    if status.finished:
        return "finished"
    if status.stale:
        return f"redo ({status.why})"
    return "redo (unfinished folder)" if os.path.exists(run.out) else "to run"


def run_lines(experiment, root):
    lines = []
    for run in experiment.runs:
        kind = "eval " if run.eval_only else "train"
        source = f"  <- {run.model_dir}" if run.model_dir else ""
        lines.append(f"  {kind} {run.out}  [{run_state(run, root)}]{source}")
    return lines


def backbone_of(method_config):
    if not os.path.isfile(method_config):
        return "?"
    with open(method_config) as f:
        return (yaml.safe_load(f) or {}).get("MODEL", {}).get("BACKBONE", {}).get("NAME", "") or "(--backbone)"


def split_sizes(cls, root):
    """Images per split from the dataset's split file, when it is there to read."""
    path = os.path.join(root or "", cls.folder, cls.split_file) if cls.split_file else ""
    if not root or not os.path.isfile(path):
        return "split sizes unknown until the dataset is in place"
    with open(path) as f:
        split = json.load(f)
    return ", ".join(f"{name} {len(split.get(name, [])):,}" for name in ("train", "val", "test")) + " images"


def extraction_lines(runs, root):
    """Per (dataset, backbone): the trainers that read cached features and the few-shot lists."""
    groups = defaultdict(lambda: {"trainers": set(), "lists": set(), "online": set()})
    for run in runs:
        cls = TRAINER_REGISTRY.get(run.trainer)
        group = groups[(run.dataset, backbone_of(run.method_config), run.dataset_config)]
        group["trainers" if cls.feature_level else "online"].add(run.trainer)
        if run.shots > 0 and not run.eval_only:
            group["lists"].add((run.shots, run.seed))
    lines = []
    for (dataset, backbone, dataset_config), group in sorted(groups.items()):
        if os.path.isfile(dataset_config) and not needs_files(dataset_class(dataset_config)):
            lines.append(f"  {dataset}: generated features (simulated), nothing to encode")
            continue
        sizes = split_sizes(dataset_class(dataset_config), root) if os.path.isfile(dataset_config) else "?"
        lists = sorted(group["lists"])
        parts = [f"eval-transform features of test/val ({sizes})"]
        if lists:
            parts.append(f"{len(lists)} few-shot list(s) (shots {sorted({k for k, _ in lists})} x seeds "
                         f"{sorted({s for _, s in lists})}) with each trainer's augmented views")
        lines.append(f"  {dataset} with {backbone}: " + "; ".join(parts)
                     + f"; read by {', '.join(sorted(group['trainers'])) or 'no cached-feature trainer'}")
        if group["online"]:
            lines.append(f"    {', '.join(sorted(group['online']))}: encodes augmented images online every epoch "
                         "(not cached)")
    return lines
