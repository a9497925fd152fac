"""Hyper-parameter search on the few-shot validation split (never on test).

A trainer passes a scoring function that closes over validation data only; the search
walks the grid in order and keeps the first best (ties keep the earlier point, as
Tip-Adapter's search does), then logs the grid and the choice.
"""
import itertools


def grid_search(grid, score, name="search"):
    """Best ``{param: value}`` of ``grid`` (``{param: [values]}``) under ``score(params)``,
    and its score. ``score`` must read validation data only."""
    keys = list(grid)
    if not keys or any(len(grid[k]) == 0 for k in keys):
        raise ValueError(f"{name}: every searched parameter needs at least one value, got {grid}")
    best, best_score = None, float("-inf")
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        value = score(params)
        if value > best_score:
            best, best_score = params, value
    size = " x ".join(f"{len(grid[k])} {k}" for k in keys)
    chosen = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.items())
    print(f"{name} on the few-shot val split ({size}): best {chosen}, val accuracy {best_score:.2f}%")
    return best, best_score


def linspace_grid(low, high, steps):
    """Tip-Adapter's grid: ``steps`` values from ``low`` up to (not including) ``high``."""
    return [low + i * (high - low) / steps for i in range(steps)]
