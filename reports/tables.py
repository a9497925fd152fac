"""Results tables: mean ± std over seeds per (dataset, trainer, cfg, variant, shots), 11-dataset
averages, and the matching published value with ours − published. ``build_tables`` returns the
numbers (``Row``s); ``records`` and ``format_table`` only lay them out."""
import csv
import io
from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np
from tabulate import tabulate

from reports.published import AVERAGE, backbone_of_cfg

FEWSHOT_DATASETS = ("imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
                    "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101")  # published.md's order
METRICS = ("accuracy", "mAP")
NUMERIC = {"shots", "mean", "std", "seeds", "published", "delta"}


def mean_std(values):
    """Mean and population std (``np.std``, as CoOp's parse_test_res.py)."""
    return float(np.mean(values)), float(np.std(values))


def split_dataset(dataset):
    """``"demo/dtd"`` -> ``("demo", "dtd")``: the folders above a tree's dataset, and its name."""
    prefix, _, name = dataset.rpartition("/")
    return prefix, name


def dataset_order(dataset):
    """Sort key: the 11 few-shot datasets in published order, then the others, the average last."""
    prefix, name = split_dataset(dataset)
    rank = FEWSHOT_DATASETS.index(name) if name in FEWSHOT_DATASETS else len(FEWSHOT_DATASETS) + (name == AVERAGE)
    return prefix, rank, name


@dataclass(frozen=True)
class Row:
    """Our figure for one (dataset, trainer, cfg, variant, shots) and metric, with the published
    value it is compared with. An average row has ``dataset`` ``[<prefix>/]average``."""
    metric: str
    dataset: str
    trainer: str
    cfg: str
    variant: str
    shots: int
    seeds: tuple  # the seeds averaged
    values: tuple  # one per seed
    mean: float
    std: float | None
    eval_only: bool = False  # every seed is an eval-only run (a distribution-shift test set)
    published: object = None  # reports.published.PublishedValue

    @property
    def delta(self):
        return None if self.published is None else self.mean - self.published.value


@dataclass(frozen=True)
class Table:
    metric: str
    rows: tuple  # per-dataset rows, then the 11-dataset averages
    incomplete: tuple  # (trainer, cfg, variant, shots, prefix, missing few-shot datasets) without an average


def average_of(rows):
    """The mean of the rows' means; the std over seeds of the per-seed averages, over the seeds that
    every row has (None when there is none)."""
    mean = float(np.mean([row.mean for row in rows]))
    common = sorted(set.intersection(*(set(row.seeds) for row in rows)))
    per_seed = [np.mean([row.values[row.seeds.index(s)] for row in rows]) for s in common]
    return mean, (float(np.std(per_seed)) if common else None), tuple(common), tuple(map(float, per_seed))


def _with_published(row, published):
    backbone = backbone_of_cfg(row.cfg)
    if published is None or backbone is None:
        return row
    match = published.find(row.trainer, backbone, split_dataset(row.dataset)[1], row.shots, row.metric)
    return row if match is None else replace(row, published=match)


def build_tables(runs, published=None, metrics=METRICS):
    """One ``Table`` per metric in ``metrics`` that the runs (``reports.runs.usable``) report."""
    tables = []
    for metric in metrics:
        cells = defaultdict(list)
        for run in sorted(runs, key=lambda r: r.seed):
            if metric in run.metrics:
                cells[run.key].append((run.seed, run.metrics[metric], run.eval_only))
        if not cells:
            continue
        rows = []
        for key, found in cells.items():
            seeds, values, eval_only = zip(*found)
            rows.append(Row(metric, key.dataset, key.trainer, key.cfg, key.variant, key.shots, seeds, values,
                            *mean_std(values), all(eval_only)))
        averages, incomplete = _averages(rows)
        rows = [_with_published(row, published) for row in sorted(rows, key=_row_order) + averages]
        tables.append(Table(metric, tuple(rows), tuple(incomplete)))
    return tables


def _row_order(row):
    return dataset_order(row.dataset), row.trainer, row.cfg, row.variant, row.shots


def _averages(rows):
    """Average rows over the 11 few-shot datasets where all 11 are present; the groups with some."""
    groups = defaultdict(dict)
    for row in rows:
        prefix, name = split_dataset(row.dataset)
        if name in FEWSHOT_DATASETS:
            groups[prefix, row.trainer, row.cfg, row.variant, row.shots][name] = row
    averages, incomplete = [], []
    for (prefix, trainer, cfg, variant, shots), found in sorted(groups.items()):
        missing = tuple(d for d in FEWSHOT_DATASETS if d not in found)
        if missing:
            incomplete.append((trainer, cfg, variant, shots, prefix, missing))
            continue
        mean, std, seeds, per_seed = average_of(list(found.values()))
        dataset = f"{prefix}/{AVERAGE}" if prefix else AVERAGE
        averages.append(Row(rows[0].metric, dataset, trainer, cfg, variant, shots, seeds, per_seed, mean, std))
    return averages, incomplete


def records(table, with_published=True):
    """The table as ``[{column: value}]`` (numbers, None for empty); ``variant`` only when some row has one,
    ``published``/``delta``/``published_as`` only ``with_published``."""
    with_variant = any(row.variant for row in table.rows)
    out = []
    for row in table.rows:
        record = {"metric": row.metric, "dataset": row.dataset, "trainer": row.trainer, "cfg": row.cfg}
        if with_variant:
            record["variant"] = row.variant
        record.update(shots=row.shots, mean=row.mean, std=row.std, seeds=len(row.seeds))
        if with_published:
            record.update(published=row.published.value if row.published else None, delta=row.delta,
                          published_as=row.published.label if row.published else None)
        out.append(record)
    return out


def _text(column, value):
    if value is None:
        return ""
    if column == "delta":
        return f"{round(value, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def csv_text(tables, with_published=True):
    """All tables as one CSV document (the ``metric`` column tells them apart)."""
    rows = [record for table in tables for record in records(table, with_published)]
    columns = list(dict.fromkeys(column for record in rows for column in record))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: _text(c, v) for c, v in record.items()} for record in rows)
    return out.getvalue()


def format_table(table, fmt="github", with_published=True):
    """Text in any tabulate format (plain, github, latex, ...), or ``csv``; the columns of ``records``."""
    if fmt == "csv":
        return csv_text([table], with_published)
    rows = records(table, with_published)
    columns = [c for c in rows[0] if c != "metric"]  # one text table per metric: its title names it
    body = [[_text(c, row[c]) for c in columns] for row in rows]
    align = ["right" if c in NUMERIC else "left" for c in columns]
    return tabulate(body, headers=columns, tablefmt=fmt, disable_numparse=True, colalign=align)


def wide_table(table, fmt="github", with_published=True):
    """The paper layout: one row per dataset, trainer and cfg, one column per shot count, cells
    ``mean ± std (seeds)``; ``with_published``, each row with a published match is followed by the
    published row and the delta row."""
    groups = defaultdict(dict)
    for row in table.rows:
        groups[(row.dataset, row.trainer, row.cfg, row.variant)][row.shots] = row
    shots = sorted({row.shots for row in table.rows})
    with_variant = any(row.variant for row in table.rows)
    body = []
    for (dataset, trainer, cfg, variant), cells in groups.items():
        keys = [dataset, trainer, cfg] + ([variant] if with_variant else [])
        body.append(keys + [f"{cells[k].mean:.2f} ± {cells[k].std:.2f} ({len(cells[k].seeds)})" if k in cells
                            else "" for k in shots])
        matched = [cells[k] for k in shots if k in cells and cells[k].published]
        if with_published and matched:
            label = matched[0].published.label
            blank = [""] * (len(keys) - 2)
            body.append(["", f"  published: {label}", *blank]
                        + [_text("mean", cells[k].published.value) if k in cells and cells[k].published else ""
                           for k in shots])
            body.append(["", "  delta", *blank]
                        + [_text("delta", cells[k].delta) if k in cells and cells[k].published else "" for k in shots])
    headers = ["dataset", "trainer", "cfg"] + (["variant"] if with_variant else []) + [f"{k}-shot" for k in shots]
    return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)
