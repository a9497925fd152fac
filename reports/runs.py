"""Run folders in CoOp's layout, read as CoOp's ``parse_test_res.py`` reads them.

A run folder is ``.../<dataset>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S>/log.txt``; its figures
are the ``* <metric>: x%`` lines after the end signal (``Finish training``, or ``=> result`` for an
eval-only run such as a distribution-shift evaluation); the last value of a metric wins.
"""
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace

END_SIGNAL = "Finish training"
TEST_LOG_SIGNAL = "=> result"
METRIC_LINE = re.compile(r"\* (\w+): ([\.\deE+-]+)%")
SHOTS_DIR = re.compile(r"^(?P<cfg>.+)_(?P<shots>\d+)shots$")
SEED_DIR = re.compile(r"seed(\d+)")


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


def end_signal_of(log_path):
    """The end signal of a log: ``=> result`` for an eval-only run, else ``Finish training``.

    Eval-only means the logged arguments say ``eval_only: True``, or, in a log without them, a
    result block without ``Finish training``; so a training run that died after a validation
    result is still read as an unfinished training run.
    """
    with open(log_path) as f:
        lines = {line.strip() for line in f}
    if "eval_only: True" in lines:
        return TEST_LOG_SIGNAL
    if "eval_only: False" in lines or END_SIGNAL in lines:
        return END_SIGNAL
    return TEST_LOG_SIGNAL if TEST_LOG_SIGNAL in lines else END_SIGNAL


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


def seed_folders(root):
    """``(folder, file names)`` of every ``seed<S>`` folder under ``root``, in sorted order."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if SEED_DIR.fullmatch(os.path.basename(folder)):
            yield folder, files


@dataclass(frozen=True)
class SeedRun:
    """One seed folder: its key (None outside the layout), its figures ({} without a result), and
    whether its log was read as an eval-only run's."""
    key: RunKey | None
    seed: int
    folder: str
    metrics: dict = field(default_factory=dict)
    has_log: bool = True
    eval_only: bool = False


def scan(roots, test_log=None):
    """Every seed folder under ``roots``; ``test_log`` True / False forces the end signal
    (``=> result`` / ``Finish training``), None tells it from each log (``end_signal_of``).
    A tree whose root is a dataset folder takes the root's name as the dataset."""
    runs = []
    for root in dict.fromkeys(roots):
        for folder, files in seed_folders(root):
            key = run_key(folder, root)
            if key is not None and not key.dataset:
                key = replace(key, dataset=os.path.basename(os.path.abspath(root)))
            log = os.path.join(folder, "log.txt")
            metrics, signal = {}, None
            if "log.txt" in files:
                signal = end_signal_of(log) if test_log is None else TEST_LOG_SIGNAL if test_log else END_SIGNAL
                metrics = read_metrics(log, signal)
            seed = int(SEED_DIR.fullmatch(os.path.basename(folder))[1])
            runs.append(SeedRun(key, seed, folder, metrics, "log.txt" in files, signal == TEST_LOG_SIGNAL))
    return runs


def problems(runs):
    """``[(folder, why)]``: seed folders without a result, outside the layout, or found twice, and
    seeds missing from a cell that other shot counts of its (dataset, trainer, cfg, variant) have
    a result for."""
    found = []
    cells = defaultdict(dict)  # RunKey -> {seed: folder}
    groups = defaultdict(set)  # (dataset, trainer, cfg, variant) -> seeds with a result
    for run in runs:
        if run.key is None:
            found.append((run.folder, "not in the <dataset>/<Trainer>/<cfg>_<K>shots/seed<S> layout"))
            continue
        if run.seed in cells[run.key]:
            found.append((run.folder, f"same run as {cells[run.key][run.seed]} (this one is not used)"))
            continue
        cells[run.key][run.seed] = run.folder
        if not run.has_log:
            found.append((run.folder, "no log.txt"))
        elif not run.metrics:
            found.append((run.folder, "failed or unfinished: log.txt has no result"))
        else:
            groups[run.key.dataset, run.key.trainer, run.key.cfg, run.key.variant].add(run.seed)
    for key, seeds in cells.items():
        expected = groups[key.dataset, key.trainer, key.cfg, key.variant]
        parent = os.path.dirname(next(iter(seeds.values())))
        for seed in sorted(expected - set(seeds)):
            found.append((os.path.join(parent, f"seed{seed}"),
                          f"missing: other shot counts of this run have seeds {', '.join(map(str, sorted(expected)))}"))
    return sorted(found)


def usable(runs):
    """The runs a table reads: in the layout, with a result, each (key, seed) once (the first)."""
    chosen = {}
    for run in runs:
        if run.key is not None:
            chosen.setdefault((run.key, run.seed), run)
    return [run for run in chosen.values() if run.metrics]
