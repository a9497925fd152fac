"""Run folders in CoOp's layout (``.../<dataset>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S>/log.txt``),
scanned into seed runs keyed by dataset, trainer, config, shots and variant, each read with the
run core's rule (``trainers.core.run_log.run_status``) as CoOp's ``parse_test_res.py`` reads it."""
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace

from trainers.core.run_log import END_SIGNAL, TEST_LOG_SIGNAL, run_status

SHOTS_DIR = re.compile(r"^(?P<cfg>.+)_(?P<shots>\d+)shots$")
SEED_DIR = re.compile(r"seed(\d+)")


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
    """Every ``seed<S>`` folder under ``root``, in sorted order."""
    for folder, dirs, _ in os.walk(root):
        dirs.sort()
        if SEED_DIR.fullmatch(os.path.basename(folder)):
            yield folder


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
    why: str = ""  # RunStatus.why: what an unfinished run lacks


def scan(roots, test_log=None):
    """Every seed folder under ``roots``, read by ``run_status``; ``test_log`` True / False forces
    the end signal (``=> result`` / ``Finish training``), None tells it from each log.
    A tree whose root is a dataset folder takes the root's name as the dataset."""
    runs = []
    for root in dict.fromkeys(roots):
        for folder in seed_folders(root):
            key = run_key(folder, root)
            if key is not None and not key.dataset:
                key = replace(key, dataset=os.path.basename(os.path.abspath(root)))
            status = run_status(folder, None if test_log is None else TEST_LOG_SIGNAL if test_log else END_SIGNAL)
            seed = int(SEED_DIR.fullmatch(os.path.basename(folder))[1])
            runs.append(SeedRun(key, seed, folder, status.metrics, status.has_log, status.eval_only, status.why))
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
        if not run.metrics:
            found.append((run.folder, run.why))
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
