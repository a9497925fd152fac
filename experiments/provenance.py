"""``provenance.json`` beside an experiment's table: the history of every ``reproduce.sh``
invocation on its output folder (which code, libraries, configs and device, how long each phase
took, which run folders it actually ran), so a reviewer can tell whether a rerun is comparable, and
which invocation made which cell of the table.

The file is ``{"experiment", "invocations": [record, ...], "cells_made_by": {cell: [number, ...]}}``:
each invocation appends its record (numbered from 1), so a no-op rerun (everything skipped) adds a
``done 0`` record and keeps the first one's timings and counts. A cell (``<dataset>/<trainer>/
<cfg>_<K>shots``, a run folder less its ``seed<S>``) was made by the invocations that last ran its
seeds to the end; ``made_by.md`` says the same for a reader. A file of the older single-record
format is kept as invocation 1 (its run folders unknown)."""
import datetime
import json
import os
import platform
import sys

from common.atomic_io import atomic_path, write_json
from common.hashing import file_sha256
from trainers.core.environment import cpu_summary, cuda_summary, git_commit, package_version

from .spec import ExperimentError

PACKAGES = ["torch", "torchvision", "open_clip_torch", "numpy", "scipy", "scikit-learn", "pillow", "yacs",
            "tabulate", "matplotlib", "tensorboard", "submitit"]
UNRECORDED = "not recorded"  # a run no recorded invocation ran: made before the history, or by hand


def now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def config_hashes(experiment):
    """SHA-256 of the experiment file and of every dataset / method config its runs read."""
    paths = {experiment.path} | {r.dataset_config for r in experiment.runs} | {r.method_config for r in experiment.runs}
    return {path: file_sha256(path) for path in sorted(paths)}


def read_history(path):
    """The invocation records already in ``path`` ([] when there is none). Read before any work, so a
    file that is not ours stops the command up front rather than after the runs."""
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ExperimentError(f"{path}: not a readable provenance file ({e}); move it away to start a new history")
    if isinstance(data, dict) and isinstance(data.get("invocations"), list):
        return data["invocations"]
    if isinstance(data, dict) and "runs" in data and "seconds" in data:  # the single-record format
        return [{"number": 1, **data}]
    raise ExperimentError(f"{path}: neither an 'invocations' list nor a provenance record; move it away to "
                          "start a new history")


def invocation_record(number, started_at, experiment, launch, timings, results):
    """One invocation: ``launch`` says how it ran (launcher, jobs, root, ...); ``timings`` seconds per
    phase; ``results`` the RunResults of every run. ``ran`` lists the run folders (relative to the
    output folder) it ran to the end; skipped ones are not in it."""
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    return {
        "number": number,
        "started_at": started_at,
        "finished_at": now(),
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
        "ran": sorted(os.path.relpath(r.out, experiment.output) for r in results if r.status == "done"),
        "seconds": timings,
    }


def cells_made_by(experiment, invocations):
    """``{cell: [invocation numbers]}`` over the experiment's run folders: each run is credited to the
    last invocation that ran it to the end (a redone run to its redo), ``UNRECORDED`` when none did."""
    made = {}
    for record in invocations:
        for rel in record.get("ran", ()):
            made[rel] = record["number"]
    cells = {}
    for run in experiment.runs:
        rel = os.path.relpath(run.out, experiment.output)
        cells.setdefault(os.path.dirname(rel), set()).add(made.get(rel, UNRECORDED))
    return {cell: sorted(n for n in by if n != UNRECORDED) + [n for n in by if n == UNRECORDED]
            for cell, by in sorted(cells.items())}


def made_by_text(invocations, cells):
    """``made_by.md``: the invocations, one line each, then which made each cell."""
    lines = ["# Which reproduce invocation made which cell", ""]
    for r in invocations:
        runs = r["runs"]
        lines.append(f"- #{r['number']} finished {r.get('finished_at', '?')}: `{r.get('command', '?')}`, "
                     f"{runs.get('done', '?')} done, {runs.get('skipped', '?')} skipped, "
                     f"{runs.get('failed', '?')} failed, {r['seconds'].get('total', '?')} s")
    lines += ["", "| cell | made by |", "|---|---|"]
    lines += [f"| {cell} | {', '.join(f'#{n}' if isinstance(n, int) else n for n in by)} |"
              for cell, by in cells.items()]
    return "\n".join(lines) + "\n"


def write_provenance(report_dir, experiment, history, record):
    """Append ``record`` to ``history`` and write ``provenance.json`` and ``made_by.md``."""
    invocations = history + [record]
    cells = cells_made_by(experiment, invocations)
    write_json({"experiment": experiment.name, "description": experiment.description,
                "invocations": invocations, "cells_made_by": cells}, os.path.join(report_dir, "provenance.json"))
    with atomic_path(os.path.join(report_dir, "made_by.md")) as tmp:
        with open(tmp, "w") as f:
            f.write(made_by_text(invocations, cells))
    return cells
