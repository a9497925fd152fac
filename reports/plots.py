"""Accuracy (or mAP) vs shots: one panel per dataset plus an "Average" panel, ours solid with a
±std band over seeds, published dashed in the same colour. ``plot_series`` takes its points from
a table's rows (``reports.tables``); ``draw`` only draws them."""
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
MARKERS = "osD^vP*X"


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
    series = []
    for panel in panels:
        shown = averaged if panel == AVERAGE_PANEL else [panel]
        for (trainer, cfg, variant), cells in sorted(ours.items()):
            points = {}
            for k in sorted({shots for _, shots in cells}):
                if all((d, k) in cells for d in shown):
                    mean, std, _, _ = average_of([cells[d, k] for d in shown])
                    points[k] = (mean, std)
            label = f"{trainer} ({cfg}{'/' + variant if variant else ''})"
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


def draw(series, metric, dest):
    """Write ``<dest>.png`` and ``<dest>.pdf``; returns their paths."""
    panels = list(dict.fromkeys(s.panel for s in series))
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows + 0.6), squeeze=False,
                             layout="constrained")
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(sorted({s.method for s in series}))}
    markers = {label: MARKERS[i % len(MARKERS)]
               for i, label in enumerate(dict.fromkeys(s.label for s in series if not s.published))}
    shots = {k for s in series for k in s.shots if k > 0} or {1, 16}
    ticks = sorted(shots | {k for k in (1, 2, 4, 8, 16) if min(shots) <= k <= max(shots)})
    legend = {}
    for ax, panel in zip(axes.flat, panels):
        for s in (s for s in series if s.panel == panel):
            style = dict(color=colours[s.method], linestyle="--" if s.published else "-",
                         marker=None if s.published or not any(s.shots) else markers[s.label], markersize=4,
                         linewidth=1.5)
            legend.setdefault(s.label, Line2D([], [], **style))
            _draw_series(ax, s, style)
        ax.set_title(panel, fontsize=10)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(k) for k in ticks])
        ax.set_xlim(ticks[0] / 1.25, ticks[-1] * 1.25)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("shots per class")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{metric} (%)")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncol=min(ncols, len(legend)), fontsize=9)
    paths = [f"{dest}.png", f"{dest}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


def _draw_series(ax, s, style):
    """A curve over the shot counts > 0; a point at 0 shots (a zero-shot run) is a horizontal line."""
    curve = [(k, m, sd) for k, m, sd in zip(s.shots, s.means, s.stds) if k > 0]
    for k, mean, _ in zip(s.shots, s.means, s.stds):
        if k == 0:
            ax.axhline(mean, color=style["color"], linestyle=style["linestyle"], linewidth=1)
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
