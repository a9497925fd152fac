"""Accuracy (or mAP) vs shots: one panel per dataset plus an "Average" panel, ours with a marker
and a ±std band over seeds, published dashed (no marker) in the same colour. ``plot_series`` takes
its points from a table's rows (``reports.tables``); ``draw`` only draws them.

Readable with 12+ methods: one legend for the whole figure, beside the panels (the figure grows
to hold it, so the axes keep their size); each of our lines gets its own (marker, line style)
pair, cycling 11 markers against 3 line styles (33 pairs before one repeats), and its trainer's
colour; a config suffix shared by every line (``(sim)``) is left out of the labels."""
from collections import defaultdict
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from reports.published import AVERAGE  # noqa: E402
from reports.tables import average_of, dataset_order, split_dataset  # noqa: E402

AVERAGE_PANEL = "Average"
MARKERS = "osD^vP*Xhp<"  # 11: coprime with the 3 line styles, so (marker, style) pairs cycle every 33 lines
OURS_LINESTYLES = ("-", (0, (4, 1, 1, 1)), (0, (1, 1)))  # solid, dash-dot, dotted
PUBLISHED_LINESTYLE = (0, (6, 3))  # long dashes, no marker
PANEL_SIZE = (4.0, 3.2)  # inches per panel: 9-10 pt labels stay legible at 150 dpi
LEGEND_ROW = 0.2  # inches per legend entry at 9 pt


@dataclass(frozen=True)
class Series:
    """One line of one panel: ours (mean and std over seeds per shot count) or published."""
    panel: str  # a dataset, or "Average"
    method: str  # the trainer: sets the colour
    label: str  # the legend entry
    published: bool
    shots: tuple
    means: tuple
    stds: tuple  # None where there is no spread to show


def plot_series(table):
    """Series of a ``reports.tables.Table``: its per-dataset rows, and an "Average" panel over the
    datasets shown that runs trained on, when there are two or more (shift sets, where every run
    is eval-only, are left out; zero-shot runs beside trained ones are not); ``average_of`` as for
    the table's average rows, a published average is the mean of the published values shown."""
    rows = [row for row in table.rows if split_dataset(row.dataset)[1] != AVERAGE]
    datasets = sorted({row.dataset for row in rows}, key=dataset_order)
    # a shift set holds eval-only runs only; a few-shot dataset also has trained runs beside zero-shot
    averaged = [d for d in datasets if not all(row.eval_only for row in rows if row.dataset == d)]
    ours, published = defaultdict(dict), defaultdict(dict)
    for row in rows:
        ours[row.trainer, row.cfg, row.variant][row.dataset, row.shots] = row
        if row.published is not None:
            published[row.trainer, row.published.label][row.dataset, row.shots] = row.published.value
    panels = datasets + ([AVERAGE_PANEL] if len(averaged) > 1 else [])
    common = len({(cfg, variant) for _, cfg, variant in ours}) == 1  # the same suffix on every label: drop it
    series = []
    for panel in panels:
        shown = averaged if panel == AVERAGE_PANEL else [panel]
        for (trainer, cfg, variant), cells in sorted(ours.items()):
            points = {}
            for k in sorted({shots for _, shots in cells}):
                if all((d, k) in cells for d in shown):
                    mean, std, _, _ = average_of([cells[d, k] for d in shown])
                    points[k] = (mean, std)
            label = trainer if common else f"{trainer} ({cfg}{'/' + variant if variant else ''})"
            series += _series(panel, trainer, label, False, points)
        for (trainer, label), values in sorted(published.items()):
            points = {k: (sum(values[d, k] for d in shown) / len(shown), None)
                      for k in sorted({shots for _, shots in values}) if all((d, k) in values for d in shown)}
            series += _series(panel, trainer, f"{label}, published", True, points)
    return series


def _series(panel, method, label, published, points):
    if not points:
        return []
    shots = tuple(points)
    return [Series(panel, method, label, published, shots, tuple(points[k][0] for k in shots),
                   tuple(points[k][1] for k in shots))]


def styles(series):
    """Line style of every legend entry: a colour per trainer (shared by its published line), and per
    label of ours a (marker, line style) pair no other label of ours has (up to 33 labels)."""
    methods = sorted({s.method for s in series})
    cmap = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    colours = {m: cmap(i % cmap.N) for i, m in enumerate(methods)}
    ours = list(dict.fromkeys(s.label for s in series if not s.published))
    curves = {s.label for s in series if any(s.shots)}  # a zero-shot-only label is a horizontal line: no marker
    out = {label: dict(color=None, marker=MARKERS[i % len(MARKERS)] if label in curves else None,
                       linestyle=OURS_LINESTYLES[i % 3], markersize=5, linewidth=1.5) for i, label in enumerate(ours)}
    for s in series:
        if s.published:
            out[s.label] = dict(color=None, marker=None, linestyle=PUBLISHED_LINESTYLE, linewidth=1.3)
        out[s.label]["color"] = colours[s.method]
    return out


def draw(series, metric, dest):
    """Write ``<dest>.png`` and ``<dest>.pdf``; returns their paths."""
    fig = figure(series, metric)
    paths = [f"{dest}.png", f"{dest}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


def figure(series, metric):
    """The figure: PANEL_SIZE per panel (at most 4 panels a row) plus a column for the one legend,
    which it grows to hold (more legend columns when the entries outrun the panels' height)."""
    panels = list(dict.fromkeys(s.panel for s in series))
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    style = styles(series)
    kind = {s.label: (s.method, s.published) for s in series}  # each method's lines, ours first, together
    order = sorted(style, key=lambda label: (*kind[label], label))
    height = max(PANEL_SIZE[1] * nrows + 0.5, 1.0)
    per_column = max(int((height - 0.3) / LEGEND_ROW), 1)
    legend_cols = -(-len(order) // per_column)
    legend_width = legend_cols * (0.7 + 0.075 * max(len(label) for label in order))
    fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL_SIZE[0] * ncols + legend_width, height), squeeze=False,
                             layout="constrained")
    shots = {k for s in series for k in s.shots if k > 0} or {1, 16}
    ticks = sorted(shots | {k for k in (1, 2, 4, 8, 16) if min(shots) <= k <= max(shots)})
    for ax, panel in zip(axes.flat, panels):
        for s in (s for s in series if s.panel == panel):
            _draw_series(ax, s, style[s.label])
        ax.set_title(panel, fontsize=11)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(k) for k in ticks])
        ax.set_xlim(ticks[0] / 1.25, ticks[-1] * 1.25)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(labelsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("shots per class", fontsize=10)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{metric} (%)", fontsize=10)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.legend([Line2D([], [], **style[label]) for label in order], order, loc="outside right upper",
               ncol=legend_cols, fontsize=9, handlelength=3)
    return fig


def _draw_series(ax, s, style):
    """A curve over the shot counts > 0; a point at 0 shots (a zero-shot run) is a horizontal line."""
    curve = [(k, m, sd) for k, m, sd in zip(s.shots, s.means, s.stds) if k > 0]
    for k, mean, _ in zip(s.shots, s.means, s.stds):
        if k == 0:
            ax.axhline(mean, color=style["color"], linestyle=style["linestyle"], linewidth=1.2)
    if not curve:
        return
    x, means, stds = zip(*curve)
    ax.plot(x, means, **style)
    if s.published or not any(sd for sd in stds):
        return
    spread = [sd or 0 for sd in stds]
    if len(x) == 1:  # no band through one point: an error bar
        ax.errorbar(x, means, yerr=spread, color=style["color"], capsize=3, linewidth=1)
    else:
        low, high = zip(*((m - sd, m + sd) for m, sd in zip(means, spread)))
        ax.fill_between(x, low, high, color=style["color"], alpha=0.18, linewidth=0)
