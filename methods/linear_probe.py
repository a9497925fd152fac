"""CoOp's linear-probe CLIP: L2-regularised logistic regression (lbfgs) on frozen image
features, with the inverse regularisation strength C chosen on validation data by CoOp's
procedure (a coarse grid, then a binary search in log10 space)."""
import math

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from .recipes import COOP_C_GRID  # CoOp's search list, largest C first

COOP_TOL = 1e-4  # scikit-learn's default tol, which CoOp's linear probe leaves as it is


def fit_logistic_regression(features, labels, c, max_iter, init=None):
    """scikit-learn's L2 logistic regression with lbfgs, as CoOp fits it (the L2 penalty is the
    default of every scikit-learn >= 1.4, which deprecates spelling it out). ``init``: a fitted
    classifier whose solution lbfgs starts from (a warm start; CoOp starts every fit from zero).

    The stopping rule is CoOp's: the scikit-learn of its time minimised the *summed* loss
    ``sum_i CE_i + ||W||^2 / (2C)`` and stopped at max |gradient| <= tol; today's minimises that
    sum divided by n (same solution) and stops at the same tol on the *mean* gradient, n times
    looser. At ImageNet size (1000 classes, 16,000 unit-norm features) every gradient entry at
    W = 0 is already below 1e-4, so lbfgs stopped before its first step and the probe predicted
    one class (0.1%). ``tol = COOP_TOL / n`` is the old rule on today's objective."""
    model = LogisticRegression(solver="lbfgs", C=c, max_iter=max_iter, tol=COOP_TOL / len(labels),
                               warm_start=init is not None)
    if init is not None:
        model.coef_, model.intercept_ = init.coef_.copy(), init.intercept_.copy()
    return model.fit(features, labels)


def nearest_fit(fits, c, max_decades=1.0):
    """The classifier of ``fits`` (``{C: fitted classifier}``) whose C is closest to ``c`` in
    log10 space, if within ``max_decades`` (the warm start for ``c``), else None. Farther solutions
    start lbfgs worse than zero does (CoOp's grid is 2 decades apart: measured, it needs more
    iterations warm than cold), so only the binary search's steps are warm-started."""
    if not fits:
        return None
    nearest = min(fits, key=lambda fitted: abs(math.log10(fitted) - math.log10(c)))
    return fits[nearest] if abs(math.log10(nearest) - math.log10(c)) <= max_decades else None


def accuracy(classifier, features, labels):
    """Top-1 accuracy (%) of a fitted classifier."""
    return 100.0 * float(np.mean(classifier.predict(features) == labels))


def check_c_grid(grid):
    """``grid`` as floats, or ValueError unless it is a non-empty list of positive numbers."""
    try:
        values = [float(c) for c in grid]
    except (TypeError, ValueError):
        values = []
    if not values or min(values) <= 0:
        raise ValueError(f"the C grid must be a non-empty list of positive numbers, got {list(grid)}")
    return values


def coop_c_search(score, grid=COOP_C_GRID, num_steps=8, log=print, on="the few-shot val split"):
    """CoOp's choice of C under ``score(C)`` (validation accuracy; higher is better).

    The grid's first best C is the peak; the search then starts from [peak / 10, peak * 10]
    and, for ``num_steps`` steps, scores both ends, keeps the better one (the left one on a
    tie) as the current choice, and halves the interval in log10 space towards it. The
    choice after the last step is returned (the peak itself when ``num_steps`` is 0). Each
    C is scored once: the fits are deterministic, so CoOp's repeated fits change nothing.
    """
    check_c_grid(grid)
    scores = {}

    def scored(c):
        if c not in scores:
            scores[c] = score(c)
        return scores[c]

    grid_scores = [scored(c) for c in grid]
    peak = grid[int(np.argmax(grid_scores))]
    log(f"C grid on {on}: " + ", ".join(f"C={c:g}: {s:.2f}%" for c, s in zip(grid, grid_scores))
        + f" -> peak C={peak:g}")
    chosen = peak
    left, right = math.log10(peak) - 1.0, math.log10(peak) + 1.0
    for step in range(num_steps):
        c_left, c_right = 10.0 ** left, 10.0 ** right
        acc_left, acc_right = scored(c_left), scored(c_right)
        middle = 0.5 * (left + right)
        if acc_left < acc_right:
            chosen, left = c_right, middle
        else:
            chosen, right = c_left, middle
        log(f"C search step {step + 1}/{num_steps}: C={c_left:.4g}: {acc_left:.2f}%, C={c_right:.4g}: "
            f"{acc_right:.2f}% -> C={chosen:.4g}")
    return chosen, scores[chosen]


def lpclip_val_indices(labels, num_shots, seed):
    """Row indices of lpclip's validation sample: for each label in sorted order,
    ``np.random.choice(rows of that label, min(K, 4), replace=False)`` under numpy's legacy RNG
    seeded with ``seed`` (lpclip/linear_probe.py; its table {1: 1, 2: 2, 4: 4, 8: 4, 16: 4} is
    min(K, 4)). A class with fewer images keeps them all (lpclip would fail) and K < 1 keeps
    every row (all-shot runs validate on the whole split). lpclip draws its own train sample from
    the same stream first; here the train list is the benchmark's, so the stream starts fresh."""
    labels = np.asarray(labels)
    if num_shots < 1:
        return np.arange(len(labels))
    rng, n = np.random.RandomState(seed), min(num_shots, 4)
    picked = []
    for label in np.unique(labels):
        rows = np.where(labels == label)[0]
        picked.extend(rng.choice(rows, size=n, replace=False) if len(rows) >= n else rows)
    return np.asarray(picked, dtype=np.int64)


def linear_weights(classifier, num_classes):
    """``(weight [C, d], bias [C])`` float32 tensors giving the classifier's class logits.
    A two-class problem has one decision function z; rows (-z/2, z/2) give the same softmax."""
    expected = np.arange(num_classes)
    if not np.array_equal(classifier.classes_, expected):
        missing = sorted(set(expected.tolist()) - set(classifier.classes_.tolist()))
        raise ValueError(f"the linear probe saw no training image of class(es) {missing}")
    weight = torch.from_numpy(classifier.coef_).float()
    bias = torch.from_numpy(classifier.intercept_).float()
    if num_classes == 2:
        weight, bias = torch.cat([-weight, weight]) / 2, torch.cat([-bias, bias]) / 2
    return weight, bias


class LinearProbeHead(torch.nn.Module):
    """The fitted probe as a torch module: ``weight [C, d]`` and ``bias [C]`` are buffers, so they
    are checkpointed and reloaded like any model, and never trained by gradient."""

    def __init__(self, dim, num_classes, normalize=False):
        super().__init__()
        self.normalize = normalize
        self.register_buffer("weight", torch.zeros(num_classes, dim))
        self.register_buffer("bias", torch.zeros(num_classes))

    def set_weights(self, weight, bias):
        self.weight.copy_(weight)
        self.bias.copy_(bias)

    def prepare(self, features):
        """What the probe sees: the features as they are (CoOp), or L2-normalised."""
        features = features.float()
        return torch.nn.functional.normalize(features, dim=-1) if self.normalize else features

    def forward(self, features):
        return torch.nn.functional.linear(self.prepare(features), self.weight, self.bias)
