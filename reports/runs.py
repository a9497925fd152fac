"""Run folders in CoOp's layout, read as CoOp's ``parse_test_res.py`` reads them, and the one
rule that says whether a run is finished (``run_status``) for every tool that asks.

A run folder is ``.../<dataset>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S>/log.txt``; its figures
are the ``* <metric>: x%`` lines after the end signal (``Finish training``, or ``=> result`` for an
eval-only run such as a distribution-shift evaluation); the last value of a metric wins.

Only ``log.txt`` counts, never a rerun's ``log.txt-<timestamp>``. When train.py reruns into a folder
whose ``log.txt`` is not finished (a run that died), it appends to ``log.txt`` after a
``===== resumed ... =====`` line (``resumed_line``); the status is read from the part after the
last such line, which is one complete train.py invocation. CoOp's parser, reading the whole file,
takes the same figures whenever that part is finished (its test result is the last one printed).
This module imports no torch: the shell runners ask it through ``python -m reports.finished``.
"""
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace

END_SIGNAL = "Finish training"
TEST_LOG_SIGNAL = "=> result"
LOG_NAME = "log.txt"
RESUMED_PREFIX = "===== resumed "
TEST_METRICS = ("accuracy", "mAP")  # a test result: classification / retrieval
METRIC_LINE = re.compile(r"\* (\w+): ([\.\deE+-]+)%")
SHOTS_DIR = re.compile(r"^(?P<cfg>.+)_(?P<shots>\d+)shots$")
SEED_DIR = re.compile(r"seed(\d+)")


def resumed_line(when):
    """The line train.py writes into the ``log.txt`` of a run that died before it continues that
    log with the rerun (``when``: the rerun's date)."""
    return f"{RESUMED_PREFIX}{when} (the run above did not finish; log.txt continues) ====="


def metrics_of(lines, end_signal=END_SIGNAL):
    """``{metric: value}`` from the lines after ``end_signal`` (the last value wins), or {}:
    CoOp's ``parse_test_res.py`` rule."""
    metrics, started = {}, False
    for line in lines:
        line = line.strip()
        if line == end_signal:
            started = True
        match = METRIC_LINE.search(line)
        if match and started:
            metrics[match.group(1)] = float(match.group(2))
    return metrics


def read_metrics(log_path, end_signal=END_SIGNAL):
    """``metrics_of`` a whole log file, exactly as CoOp's parser reads it."""
    with open(log_path) as f:
        return metrics_of(f, end_signal)


def last_run_lines(log_path):
    """``(lines, resumed)``: the lines of ``log_path`` after its last ``resumed_line`` (all of them
    without one), and how many such lines it holds."""
    with open(log_path) as f:
        lines = f.read().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(RESUMED_PREFIX)]
    return (lines[starts[-1] + 1:] if starts else lines), len(starts)


def signal_of(lines):
    """The end signal of a log's lines: ``=> result`` for an eval-only run, else ``Finish training``.

    Eval-only means the logged arguments say ``eval_only: True``, or, in a log without them, a
    result block without ``Finish training``; so a training run that died after a validation
    result is still read as an unfinished training run.
    """
    lines = {line.strip() for line in lines}
    if "eval_only: True" in lines:
        return TEST_LOG_SIGNAL
    if "eval_only: False" in lines or END_SIGNAL in lines:
        return END_SIGNAL
    return TEST_LOG_SIGNAL if TEST_LOG_SIGNAL in lines else END_SIGNAL


def end_signal_of(log_path):
    """``signal_of`` the last run in a log file (``last_run_lines``)."""
    return signal_of(last_run_lines(log_path)[0])


@dataclass(frozen=True)
class RunStatus:
    """What ``run_status`` found in a run folder. ``metrics`` are the figures that count ({} unless
    finished); ``why`` says in a few words what is missing when the run is not finished."""
    folder: str
    has_log: bool
    eval_only: bool = False
    metrics: dict = field(default_factory=dict)
    resumed: int = 0  # how many times log.txt was continued by a rerun
    why: str = ""

    @property
    def finished(self):
        return bool(self.metrics)

    @property
    def log(self):
        """The log whose result counts: always ``<folder>/log.txt``."""
        return os.path.join(self.folder, LOG_NAME)


def run_status(folder, end_signal=None):
    """Whether the run in ``folder`` is finished, and the figures that count. The one rule of this
    project (train.py, the shell runners, results.py, reproduce and the launchers all ask it):

    a run is finished when its ``log.txt`` (never a ``log.txt-<timestamp>``), read from its last
    ``resumed_line`` on, has a test result (``* accuracy:`` or ``* mAP:``) after the end signal,
    ``Finish training`` for a training run and ``=> result`` for an eval-only one. ``end_signal``
    None tells the end signal from the log (``signal_of``); a value forces it (``--test-log``).
    So a validation result printed before ``Finish training`` (``TEST.FINAL_MODEL best_val``) never
    finishes a run, and a run completed by a rerun that continued its log does.
    """
    log = os.path.join(folder, LOG_NAME)
    if not os.path.isfile(log):
        return RunStatus(folder, has_log=False, why=f"no {LOG_NAME}")
    lines, resumed = last_run_lines(log)
    signal = end_signal or signal_of(lines)
    metrics = metrics_of(lines, signal)
    eval_only = signal == TEST_LOG_SIGNAL
    if any(m in metrics for m in TEST_METRICS):
        return RunStatus(folder, True, eval_only, metrics, resumed)
    ran = "the rerun in log.txt" if resumed else LOG_NAME
    return RunStatus(folder, True, eval_only, {}, resumed,
                     f"failed or unfinished: {ran} has no test result after '{signal}'")


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
