"""What a run's ``log.txt`` says, and the one rule that says whether a run is finished
(``run_status``) for every tool that asks: train.py, the shell runners, results.py, reproduce
and the launchers. It sits in the run core because the loop writes the lines it reads.

Figures are the ``* <metric>: x%`` lines after the end signal (``Finish training``, or ``=> result``
for an eval-only run such as a distribution-shift evaluation); the last value of a metric wins,
as in CoOp's ``parse_test_res.py``.

Only ``log.txt`` counts, never a rerun's ``log.txt-<timestamp>``. When train.py reruns into a folder
whose ``log.txt`` is not finished (a run that died), it appends to ``log.txt`` after a
``===== resumed ... =====`` line (``resumed_line``); the status is read from the part after the
last such line, which is one complete train.py invocation. CoOp's parser, reading the whole file,
takes the same figures whenever that part is finished (its test result is the last one printed).
This module imports no torch: the shell runners ask it through ``python -m reports.finished``.
"""
import os
import re
from dataclasses import dataclass, field, replace

import yaml

END_SIGNAL = "Finish training"
TEST_LOG_SIGNAL = "=> result"
LOG_NAME = "log.txt"
RESUMED_PREFIX = "===== resumed "
TEST_METRICS = ("accuracy", "mAP")  # a test result: classification / retrieval
METRIC_LINE = re.compile(r"\* (\w+): ([\.\deE+-]+)%")
CONFIG_NAME = "config.yaml"
# Where things live, not what runs: a run moved to another machine or cache is not stale.
LOCATION_KEYS = frozenset({"OUTPUT_DIR", "RESUME", "DATASET.ROOT", "FEATURES.CACHE_DIR", "CLIP.CACHE_DIR"})

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
    stale: tuple = ()  # a finished run's config changes (``config_changes``): it counts as unfinished

    @property
    def finished(self):
        return bool(self.metrics)

    @property
    def log(self):
        """The log whose result counts: always ``<folder>/log.txt``."""
        return os.path.join(self.folder, LOG_NAME)


def flat_config(node, prefix=""):
    """A loaded config as ``{dotted key: value}``."""
    if not isinstance(node, dict):
        return {prefix[:-1]: node}
    return {key: value for name, child in node.items() for key, value in flat_config(child, f"{prefix}{name}.").items()}


def config_changes(folder, current, ignore=()):
    """``KEY: old -> new`` for each key whose value in ``folder``'s config.yaml differs from
    ``current`` (a config dump: the config the run would get now). Not changes: the
    ``LOCATION_KEYS`` and ``ignore`` (a seed drawn at random), and a key the folder's config
    predates (a new key's default keeps the old behaviour). No config.yaml: nothing to compare."""
    path = os.path.join(folder, CONFIG_NAME)
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        old = flat_config(yaml.safe_load(f) or {})
    new = flat_config(yaml.safe_load(current) or {})
    skip = LOCATION_KEYS | set(ignore)
    return [f"{key}: {old[key]!r} -> {new[key]!r}" for key in sorted(old.keys() & new.keys())
            if key not in skip and old[key] != new[key]]


def run_status(folder, end_signal=None):
    """Whether the run in ``folder`` is finished, and the figures that count. The one rule of this
    project (train.py, the shell runners, results.py, reproduce and the launchers all ask it):

    a run is finished when its ``log.txt`` (never a ``log.txt-<timestamp>``), read from its last
    ``resumed_line`` on, has a test result (``* accuracy:`` or ``* mAP:``) after the end signal,
    ``Finish training`` for a training run and ``=> result`` for an eval-only one. ``end_signal``
    None tells the end signal from the log (``signal_of``); a value forces it (``--test-log``).
    So a validation result printed before ``Finish training`` (``TEST.FINAL_MODEL best_val``) never
    finishes a run, and a run completed by a rerun that continued its log does. The runners also
    ask whether a finished run is still current (``stale_if_changed``).
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


def stale_if_changed(status, config, ignore=()):
    """``status``, or for a finished run whose config.yaml holds other values than ``config`` (the
    dump of the config the run would get now, ``trainers.core.run.current_config``; see
    ``config_changes``) a stale one: not finished, so it is redone rather than reported beside
    runs of the new config."""
    changes = config_changes(status.folder, config, ignore) if status.finished else []
    if not changes:
        return status
    shown = "; ".join(changes[:3]) + (f"; and {len(changes) - 3} more" if len(changes) > 3 else "")
    return replace(status, metrics={}, why=f"stale: finished under another config ({shown})", stale=tuple(changes))
