"""``provenance.json`` beside an experiment's table: which code, libraries, configs and device
produced it, and how long each phase took, so a reviewer can tell whether a rerun is comparable."""
import datetime
import platform
import sys

from datasets.atomic_io import write_json
from trainers.clip_backbone import file_digest
from trainers.environment import cpu_summary, cuda_summary, git_commit, package_version

PACKAGES = ["torch", "torchvision", "open_clip_torch", "numpy", "scipy", "scikit-learn", "pillow", "yacs",
            "tabulate", "matplotlib", "tensorboard", "submitit"]


def config_hashes(experiment):
    """SHA-256 of the experiment file and of every dataset / method config its runs read."""
    paths = {experiment.path} | {r.dataset_config for r in experiment.runs} | {r.method_config for r in experiment.runs}
    return {path: file_digest(path) for path in sorted(paths)}


def write_provenance(path, experiment, launch, timings, results):
    """``launch``: how it ran (launcher, jobs, root, ...); ``timings``: seconds per phase;
    ``results``: the RunResults of every run."""
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    write_json({
        "experiment": experiment.name,
        "description": experiment.description,
        "finished_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "device": {"cuda": cuda_summary(), "cpus": cpu_summary()},
        "launch": launch,
        "config_sha256": config_hashes(experiment),
        "runs": {"total": len(results), **counts,
                 "failed_folders": [r.out for r in results if r.status == "failed"]},
        "seconds": timings,
    }, path)
