"""Everything an experiment needs before its first run, checked at once: the config files,
each dataset folder / image folder / split file, the CLIP weights, and free disk. The result is
one list of what is missing, each with where to get it, so a reviewer fixes all in one go."""
import os
import shutil

import yaml

from datasets.pairs import RetrievalDatasetBase
from datasets.registry import DATASET_REGISTRY

COOP_DATASETS_DOC = "https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md"


def dataset_class(dataset_config):
    with open(dataset_config) as f:
        name = (yaml.safe_load(f) or {}).get("DATASET", {}).get("NAME", "")
    return DATASET_REGISTRY.get(name)


def needs_files(cls):
    """The simulated benchmarks generate their data: no folder, no weights."""
    return not hasattr(cls, "feature_source")


def where_to_get(cls):
    if issubclass(cls, RetrievalDatasetBase):
        return "see docs/RETRIEVAL_DATASETS.md"
    return f"CoOp's DATASETS.md, section {cls.__name__}: {COOP_DATASETS_DOC}"


def missing_dataset_files(runs, root):
    missing, seen, need_root = [], set(), []
    for run in runs:
        if run.dataset_config in seen:
            continue
        seen.add(run.dataset_config)
        if not os.path.isfile(run.dataset_config):
            missing.append(f"dataset config {run.dataset_config} (no dataset named {run.dataset!r})")
            continue
        cls = dataset_class(run.dataset_config)
        if not needs_files(cls):
            continue
        if not root:
            need_root.append(run.dataset)
            continue
        absent = [(what, os.path.join(root, rel)) for rel, what in cls.required_paths()
                  if not os.path.exists(os.path.join(root, rel))]
        if absent and absent[0][1] == os.path.join(root, cls.folder):
            absent = absent[:1]  # no folder at all: one line, not one per file inside it
        missing += [f"{run.dataset}: {what} {path} ({where_to_get(cls)})" for what, path in absent]
    if need_root:
        missing.append(f"the datasets root: pass --root DIR or set DATA (needed by {', '.join(need_root)})")
    return missing


def missing_weights_for(runs, root):
    """One line per backbone whose weights are missing (resolved from each run's full config)."""
    from trainers.core.run import build_parser, setup_cfg
    from trainers.features.clip_backbone import missing_weights

    missing, checked, configs = [], set(), set()
    for run in runs:
        sources = (run.dataset_config, run.method_config, run.opts)  # all that can set the backbone
        if sources in configs or not os.path.isfile(run.method_config) \
                or not needs_files(dataset_class(run.dataset_config)):
            continue
        configs.add(sources)
        cfg, _ = setup_cfg(build_parser().parse_args(run.argv(root or ".")))
        backbone = (cfg.MODEL.BACKBONE.NAME, cfg.CLIP.PRETRAINED, cfg.CLIP.CACHE_DIR)
        if backbone not in checked:
            checked.add(backbone)
            reason = missing_weights(cfg)
            if reason:
                missing.append(f"backbone {cfg.MODEL.BACKBONE.NAME}: {reason}")
    return missing


def existing_ancestor(path):
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def missing_disk(paths, needed_gb, source):
    missing = []
    for path in sorted({existing_ancestor(p) for p in paths}):
        free_gb = shutil.disk_usage(path).free / 2**30
        if free_gb < needed_gb:
            missing.append(f"free disk: {free_gb:.1f} GiB free under {path}, the experiment needs {needed_gb:g} GiB "
                           f"(disk_gb in {source})")
    return missing


def missing_prerequisites(experiment, root, cache_root):
    """Every missing prerequisite of ``experiment`` as a list of lines ([] when all is there)."""
    configs = sorted({r.method_config for r in experiment.runs if not os.path.isfile(r.method_config)})
    missing = [f"method config {path}" for path in configs]
    missing += missing_dataset_files(experiment.runs, root)
    missing += missing_weights_for(experiment.runs, root)
    return missing + missing_disk([experiment.output, cache_root], experiment.disk_gb, experiment.path)
