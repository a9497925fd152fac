"""Extract the frozen features of a whole experiment once, before its runs train:

    python extract_features.py --runs RUNS.json        # RUNS.json: a JSON list of train.py argument lists
    python extract_features.py <train.py arguments>    # one run
    torchrun --nproc_per_node N extract_features.py --runs RUNS.json   # N processes share each encoding

Every run's config is built as train.py builds it (its --output-dir and --resume do not matter);
its trainer loads or encodes into the feature cache every frozen feature the run will read, without
training (an --eval-only or --no-train run: only what evaluation reads), so the runs themselves
then only read the cache. Under torchrun the processes use gloo on CPU and nccl with one GPU per
LOCAL_RANK on CUDA; only rank 0 prints, except an error, which every failing process reports.
"""
import json
import os
import sys

import torch.distributed as dist

from trainers.features import distributed
from trainers.features.extraction import extract_for_runs

__all__ = ["extract_for_runs", "main"]


def parse_runs(argv):
    """The runs named on the command line: ``--runs RUNS.json`` or one run's train.py arguments."""
    if argv[:1] != ["--runs"]:
        return [argv]
    if len(argv) != 2:
        raise ValueError("--runs takes one file (a JSON list of train.py argument lists) and nothing else")
    with open(argv[1]) as f:
        runs = json.load(f)
    if not isinstance(runs, list):
        raise ValueError(f"{argv[1]}: expected a JSON list of train.py argument lists")
    return runs


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return None
    runs = parse_runs(argv)
    started = distributed.init_from_env()
    try:
        return extract_for_runs(runs)
    finally:
        if started:
            dist.destroy_process_group()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line (the message names the run), from every process that failed
        rank = f"[rank {os.environ['RANK']}] " if int(os.environ.get("WORLD_SIZE", 1)) > 1 else ""
        print(f"{rank}error: {e}", file=sys.stderr)
        sys.exit(1)
