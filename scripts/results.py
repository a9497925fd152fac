"""Read CoOp-layout run folders and print mean +- std over seeds.

    python scripts/results.py output/ [--format github] [--test-log]

A run folder is ``.../<dataset>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S>/log.txt``. A
run's figures are read exactly as CoOp's ``parse_test_res.py`` reads them: the
``* <metric>: x%`` lines after the end signal (``Finish training``, or ``=> result`` with
``--test-log``); the spread is NumPy's population std, as there.
"""
import argparse
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from tabulate import tabulate

END_SIGNAL = "Finish training"
TEST_LOG_SIGNAL = "=> result"
METRIC_LINE = re.compile(r"\* (\w+): ([\.\deE+-]+)%")
SHOTS_DIR = re.compile(r"^(?P<cfg>.+)_(?P<shots>\d+)shots$")


def read_metrics(log_path, end_signal=END_SIGNAL):
    """``{metric: value}`` from the lines after ``end_signal`` (the last value wins), or {}."""
    metrics, started = {}, False
    with open(log_path) as f:
        for line in f:
            line = line.strip()
            if line == end_signal:
                started = True
            match = METRIC_LINE.search(line)
            if match and started:
                metrics[match.group(1)] = float(match.group(2))
    return metrics


@dataclass(frozen=True)
class RunKey:
    dataset: str
    trainer: str
    cfg: str
    shots: int
    variant: str


def run_key(seed_dir, root):
    """Parse ``<dataset>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S>`` relative to ``root``."""
    parts = os.path.relpath(os.path.dirname(seed_dir), root).split(os.sep)
    for i in range(len(parts) - 1, 0, -1):
        match = SHOTS_DIR.match(parts[i])
        if match:  # folders above <dataset> (e.g. demo/) stay part of its name: trees never merge
            return RunKey("/".join(parts[:i - 1]), parts[i - 1], match["cfg"], int(match["shots"]),
                          "/".join(parts[i + 1:]))
    return None


def collect(root, end_signal=END_SIGNAL, metric="accuracy"):
    """``({RunKey: [values over seeds]}, [unfinished seed folders])`` under ``root``."""
    values, unfinished = defaultdict(list), []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if not re.fullmatch(r"seed\d+", os.path.basename(folder)):
            continue
        key = run_key(folder, root)
        found = read_metrics(os.path.join(folder, "log.txt"), end_signal) if "log.txt" in files else {}
        if key is None or not found:
            unfinished.append(folder)
        elif metric in found:  # runs of another task (accuracy vs mAP) are not this table's
            values[key].append(found[metric])
    return values, unfinished


def mean_std(values):
    return float(np.mean(values)), float(np.std(values))


def cell(values):
    mean, std = mean_std(values)
    return f"{mean:.2f} ± {std:.2f} ({len(values)})"


def shots_table(values, fmt="github", compact=False):
    """One row per (dataset, trainer, cfg, variant), one column per shot count; ``compact``
    leaves out the key columns that hold one value in every row."""
    shots = sorted({k.shots for k in values})
    rows = defaultdict(dict)
    for key, vals in values.items():
        rows[(key.dataset, key.trainer, key.cfg, key.variant)][key.shots] = cell(vals)
    names = ["dataset", "trainer", "cfg", "variant"]
    keep = [i for i in range(len(names)) if not compact or len({row[i] for row in rows}) > 1]
    headers = [names[i] for i in keep] + [f"{k}-shot" for k in shots]
    body = [[row[i] for i in keep] + [cells.get(k, "-") for k in shots] for row, cells in sorted(rows.items())]
    return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="output folder holding <dataset>/<Trainer>/<cfg>_<K>shots/.../seed<S>")
    parser.add_argument("--format", default="github", help="tabulate format: plain, github, latex, ...")
    parser.add_argument("--test-log", action="store_true", help="read eval-only logs (end signal '=> result')")
    parser.add_argument("--metric", default="accuracy")
    args = parser.parse_args(argv)
    values, unfinished = collect(args.root, TEST_LOG_SIGNAL if args.test_log else END_SIGNAL, args.metric)
    if not values:
        sys.exit(f"no finished runs under {args.root}")
    print(shots_table(values, args.format))
    if unfinished:
        print(f"\n{len(unfinished)} unfinished or failed run folder(s):")
        print("\n".join(f"  {path}" for path in unfinished))


if __name__ == "__main__":
    main()
