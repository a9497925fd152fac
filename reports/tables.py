"""Results tables: mean ± std over seeds per (dataset, trainer, cfg, variant, shots), 11-dataset
averages, and the matching published value with ours − published. ``build_tables`` returns the
numbers (``Row``s); ``records`` and ``format_table`` only lay them out.

A delta is printed only where the cell's runs are the published row's experiment: every seed
recorded (provenance.json) a published split and the published entry's selection protocol.
Otherwise the cell carries caveats: ``†`` marks a rebuilt or generated split, a protocol other than
the published row's, or seeds that differ; ``?`` marks seeds without a record; ``provenance_notes``
lists every such cell and why it has no delta (``compare_anyway`` prints the delta regardless,
and the cell keeps its mark)."""
import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np
import tabulate as tabulate_module
from tabulate import tabulate

from reports.provenance import DIFFERS, LEGEND, NO_RECORD, CellProvenance, caveats_of, read_provenance
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
    provenance: CellProvenance = field(default_factory=CellProvenance)
    caveats: tuple = ()  # (mark, why) from caveats_of
    compared_anyway: bool = False  # the delta is printed despite the caveats (--compare-anyway)

    @property
    def delta(self):
        """ours − published, or None: no published row, or caveats (unless compared anyway)."""
        if self.published is None or (self.caveats and not self.compared_anyway):
            return None
        return self.mean - self.published.value

    @property
    def mark(self):
        return "".join(m for m in (DIFFERS, NO_RECORD) if any(mark == m for mark, _ in self.caveats))

    @property
    def label(self):
        """``dataset trainer cfg[/variant] K-shot``: how notes name the cell."""
        return f"{self.dataset} {self.trainer} {self.cfg}{'/' + self.variant if self.variant else ''} {self.shots}-shot"


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


def _with_published(row, published, compare_anyway=False):
    """The row with its published match (if any) and its caveats against it."""
    backbone = backbone_of_cfg(row.cfg)
    match = None
    if published is not None and backbone is not None:
        match = published.find(row.trainer, backbone, split_dataset(row.dataset)[1], row.shots, row.metric)
    caveats = tuple(caveats_of(row.provenance, match))
    return replace(row, published=match, caveats=caveats,
                   compared_anyway=bool(compare_anyway and match is not None and caveats))


def build_tables(runs, published=None, metrics=METRICS, compare_anyway=False):
    """One ``Table`` per metric in ``metrics`` that the runs (``reports.runs.usable``) report; each
    run's provenance.json is read from its folder. ``compare_anyway``: print deltas despite caveats."""
    provenance = {run.folder: read_provenance(run.folder) for run in runs}
    tables = []
    for metric in metrics:
        cells = defaultdict(list)
        for run in sorted(runs, key=lambda r: r.seed):
            if metric in run.metrics:
                cells[run.key].append((run.seed, run.metrics[metric], run.eval_only, provenance[run.folder]))
        if not cells:
            continue
        rows = []
        for key, found in cells.items():
            seeds, values, eval_only, provs = zip(*found)
            rows.append(Row(metric, key.dataset, key.trainer, key.cfg, key.variant, key.shots, seeds, values,
                            *mean_std(values), all(eval_only), provenance=CellProvenance.of(provs)))
        averages, incomplete = _averages(rows)
        rows = [_with_published(row, published, compare_anyway) for row in sorted(rows, key=_row_order) + averages]
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
        averages.append(Row(rows[0].metric, dataset, trainer, cfg, variant, shots, seeds, per_seed, mean, std,
                            provenance=CellProvenance.merge([row.provenance for row in found.values()])))
    return averages, incomplete


def records(table, with_published=True):
    """The table as ``[{column: value}]`` (numbers, None for empty); ``variant`` only when some row has one,
    ``published``/``delta``/``published_as``/``caveats`` only ``with_published``. ``provenance`` is the
    cell's mark, split origin(s) and protocol(s)."""
    with_variant = any(row.variant for row in table.rows)
    out = []
    for row in table.rows:
        record = {"metric": row.metric, "dataset": row.dataset, "trainer": row.trainer, "cfg": row.cfg}
        if with_variant:
            record["variant"] = row.variant
        record.update(shots=row.shots, mean=row.mean, std=row.std, seeds=len(row.seeds),
                      provenance=" ".join(filter(None, (row.mark, row.provenance.text()))))
        if with_published:
            record.update(published=row.published.value if row.published else None, delta=row.delta,
                          published_as=row.published.label if row.published else None,
                          caveats="; ".join(why for _, why in row.caveats) if row.published else None)
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


LATEX_ESCAPES = str.maketrans({
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "±": r"$\pm$", "−": r"$-$", "†": r"\dag{}", "‡": r"\ddag{}"})


def latex_escape(text):
    """``text`` as LaTeX source that prints it (one pass, so an escape is never escaped again)."""
    return str(text).translate(LATEX_ESCAPES)


def latex_line(text):
    """A line printed around a LaTeX table (title, notes): escaped, and a paragraph of its own."""
    return latex_escape(text) + r"\par"


def is_latex(fmt):
    return fmt.startswith("latex")


def _tabulate(body, headers, fmt, **kwargs):
    """tabulate, except that LaTeX formats get cells escaped by ``latex_escape`` (tabulate's own
    escaping leaves ``±`` and ``†`` as they are) and are laid out without tabulate's escaping."""
    if not is_latex(fmt):
        return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True, **kwargs)
    formats = tabulate_module._table_formats  # private, but the only way to reach the unescaped row layout
    layout = formats[fmt if fmt in formats else "latex"]
    raw = formats["latex_raw"]
    layout = layout._replace(headerrow=raw.headerrow, datarow=raw.datarow)
    body = [[latex_escape(cell) for cell in row] for row in body]
    return tabulate(body, headers=[latex_escape(h) for h in headers], tablefmt=layout, disable_numparse=True,
                    **kwargs)


def format_table(table, fmt="github", with_published=True):
    """Text in any tabulate format (plain, github, latex, ...), or ``csv``; the columns of ``records``."""
    if fmt == "csv":
        return csv_text([table], with_published)
    rows = records(table, with_published)
    columns = [c for c in rows[0] if c != "metric"]  # one text table per metric: its title names it
    body = [[_text(c, row[c]) for c in columns] for row in rows]
    align = ["right" if c in NUMERIC else "left" for c in columns]
    return _tabulate(body, columns, fmt, colalign=align)


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
        body.append(keys + [f"{cells[k].mean:.2f} ± {cells[k].std:.2f} ({len(cells[k].seeds)}){cells[k].mark}"
                            if k in cells else "" for k in shots])
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
    return _tabulate(body, headers, fmt)


def provenance_notes(table, with_published=True):
    """Lines to print under the table: the legend of the marks it uses, then every cell without a
    delta against its published row and why, the cells compared anyway, and other marked cells."""
    lines = [f"{mark} {text}" for mark, text in LEGEND.items() if any(mark in row.mark for row in table.rows)]
    groups = (("Cells without a delta against their published row:",
               lambda r: with_published and r.published and r.caveats and not r.compared_anyway),
              ("Deltas printed anyway (--compare-anyway), although:", lambda r: with_published and r.compared_anyway),
              ("Marked cells without a published row:", lambda r: r.mark and not (with_published and r.published)))
    for title, chosen in groups:
        rows = [row for row in table.rows if chosen(row)]
        if rows:
            lines.append(title)
            lines += [f"  {row.label}: {'; '.join(why for _, why in row.caveats)}" for row in rows]
    return lines
