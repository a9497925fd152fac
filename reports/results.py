"""Read CoOp-layout run folders and print mean ± std over seeds beside the published numbers.

    python scripts/results.py ROOT [ROOT ...] [--format plain|github|latex|csv] [--layout wide|long]
                              [--test-log] [--metric accuracy mAP] [--no-published] [--compare-anyway]
                              [--plot DEST]

A run folder is ``.../<dataset>/<Trainer>/<cfg>_<K>shots[/<variant>]/seed<S>/log.txt``. A run's
figures are read exactly as CoOp's ``parse_test_res.py`` reads them: the ``* <metric>: x%`` lines
after the end signal (``Finish training``; ``=> result`` for an eval-only run, told from its log
or forced with ``--test-log``); the spread is NumPy's population std, as there. One table per
metric (accuracy for classification and distribution shift, mAP for retrieval), with an average
row over the 11 few-shot datasets where all 11 are present, the published value of the same
method, backbone (from the cfg name: rn50, rn101, vit_b32, vit_b16), dataset and shots
(configs/published.yaml) and ours − published. A delta is printed only where every seed's
provenance.json records the published split and the published entry's selection protocol
(``--compare-anyway`` prints it regardless); marked cells and cells without a delta are listed
under the table with the reason. Seed folders without a result and seeds missing from a cell are
listed. ``--plot DEST`` writes ``DEST_<metric>.png`` and ``.pdf`` (and says so on stderr).
"""
import argparse
import os
import sys

from tabulate import tabulate_formats

from reports.published import PUBLISHED_FILE, load_published
from reports.runs import problems, scan, usable
from reports.tables import (
    METRICS,
    build_tables,
    csv_text,
    format_table,
    is_latex,
    latex_line,
    provenance_notes,
    wide_table,
)


def describe_incomplete(trainer, cfg, variant, shots, prefix, missing):
    where = f" under {prefix}" if prefix else ""
    run = f"{trainer} {cfg}{'/' + variant if variant else ''} {shots}-shot{where}"
    return f"no 11-dataset average for {run}: missing {', '.join(missing)}"


def print_tables(tables, fmt, with_published, layout="wide"):
    """One text table per metric, each followed by the groups that miss some of the 11 datasets and
    by the provenance notes (LaTeX: every line escaped and its own paragraph, so the output can be
    ``\\input``)."""
    text = latex_line if is_latex(fmt) else str
    delta = (", the published value, delta = ours - published where split and protocol match it"
             if with_published else "")
    for i, table in enumerate(tables):
        if i:
            print()
        print(text(f"{table.metric} (%): mean and std over seeds (seeds = how many){delta}") + "\n")
        print((wide_table if layout == "wide" else format_table)(table, fmt, with_published))
        for line in [describe_incomplete(*group) for group in table.incomplete] + provenance_notes(table,
                                                                                                   with_published):
            print(text(line))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="+", metavar="ROOT",
                        help="output folder holding <dataset>/<Trainer>/<cfg>_<K>shots/.../seed<S>")
    parser.add_argument("--format", default="github", choices=["csv", *tabulate_formats], metavar="FORMAT",
                        help="plain, github, latex, csv (or another tabulate format); default github")
    parser.add_argument("--test-log", action="store_true",
                        help="read every log as eval-only (end signal '=> result'); default: told from each log")
    parser.add_argument("--metric", nargs="+", default=list(METRICS), help="metrics to tabulate (those found)")
    parser.add_argument("--published", action=argparse.BooleanOptionalAction, default=None,
                        help="the published columns (default: on when a published value matches)")
    parser.add_argument("--published-file", default=PUBLISHED_FILE, help="published numbers (YAML)")
    parser.add_argument("--compare-anyway", action="store_true",
                        help="print ours - published also where the split or the selection protocol differs from "
                             "the published row's, or is unknown (the cells stay marked)")
    parser.add_argument("--layout", choices=["wide", "long"], default="wide",
                        help="wide: a column per shot count, as in papers (default); long: a row per shot count "
                             "(csv is always long: one record per cell)")
    parser.add_argument("--plot", metavar="DEST", help="also write DEST_<metric>.png and DEST_<metric>.pdf")
    args = parser.parse_args(argv)
    missing = [root for root in args.roots if not os.path.isdir(root)]
    if missing:
        sys.exit(f"no such folder: {', '.join(missing)}")

    runs = scan(args.roots, test_log=True if args.test_log else None)
    published = load_published(args.published_file) if args.published is not False else None
    tables = build_tables(usable(runs), published, args.metric, compare_anyway=args.compare_anyway)
    if not tables:
        sys.exit(f"no finished runs under {', '.join(args.roots)}")
    show_published = args.published or (args.published is None and any(r.published for t in tables for r in t.rows))
    notes = sys.stderr if args.format == "csv" else sys.stdout  # stdout stays one CSV document
    text = latex_line if is_latex(args.format) else str
    if args.format == "csv":
        print(csv_text(tables, show_published), end="")
        for line in (line for table in tables for line in provenance_notes(table, show_published)):
            print(line, file=notes)
    else:
        print_tables(tables, args.format, show_published, args.layout)
    if show_published:
        trainers = {row.trainer for table in tables for row in table.rows}
        for claim in (c for c in published.claims if c.method in trainers):
            print("\n" + text(f"{claim.method} ({claim.status}, arXiv {claim.arxiv}): {claim.claim}"), file=notes)
    if args.plot:
        from reports.plots import draw, plot_series  # matplotlib only when plotting

        for table in tables:
            paths = draw(plot_series(table), table.metric, f"{args.plot}_{table.metric}")
            print(f"wrote {', '.join(paths)}", file=sys.stderr)  # a console message, never part of a table file
    missing = problems(runs)
    if missing:
        print(f"\n{len(missing)} missing or failed run folder(s):", file=notes)
        print("\n".join(text(f"  {path}  ({why})") for path, why in missing), file=notes)

