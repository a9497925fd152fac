"""The exact fast paths of issue 14 against the straightforward computation they replace (written
out here as the reference): Tip-Adapter's one-hot cache product as a per-class sum, its streamed
alpha / beta search, and the linear probe's warm-started C search. Same chosen hyperparameters,
same accuracy."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, run_train
from methods.linear_probe import accuracy as probe_accuracy
from methods.linear_probe import coop_c_search, fit_logistic_regression, nearest_fit
from methods.tip_adapter import alpha_beta_correct_counts, cache_logits, one_hot_labels
from trainers.core.evaluator import batch_accuracy
from trainers.features.search import grid_search, linspace_grid


def random_cache(num_classes=7, per_class=(1, 2, 3), dim=16, num_val=40, seed=0):
    """Keys and val features scattered around class centres (unequal class counts, shuffled cache
    order), one-hot values, and noisy text prototypes: ``(keys, values, f, labels, text)``."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=g)
    labels = torch.tensor([c for c in range(num_classes) for _ in range(per_class[c % len(per_class)])])
    labels = labels[torch.randperm(len(labels), generator=g)]
    keys = F.normalize(centres[labels] + 1.5 * torch.randn(len(labels), dim, generator=g), dim=-1)
    val_labels = torch.randint(num_classes, (num_val,), generator=g)
    f = F.normalize(centres[val_labels] + 1.5 * torch.randn(num_val, dim, generator=g), dim=-1)
    text = F.normalize(centres + 2.0 * torch.randn(num_classes, dim, generator=g), dim=-1)
    return keys, F.one_hot(labels, num_classes).float(), f, val_labels, text


def straightforward_search(f, labels, zero_shot, keys, values, grid):
    """The search before issue 14: grid_search over every point, dense ``exp(...) @ values``."""
    affinity = f @ keys.t()
    return grid_search(grid, lambda p: batch_accuracy(
        zero_shot + p["alpha"] * (torch.exp(-p["beta"] * (1.0 - affinity)) @ values), labels), name="reference")


def streamed_search(f, labels, zero_shot, keys, values, grid, max_elements):
    """The trainer's search: one streamed pass for the counts, then grid_search over the table."""
    counts = alpha_beta_correct_counts(f, labels, zero_shot, keys, values, grid["alpha"], grid["beta"], max_elements)
    fractions = (counts.float() / len(labels)).tolist()
    table = {(b, a): 100.0 * fractions[i][j] for i, b in enumerate(grid["beta"]) for j, a in enumerate(grid["alpha"])}
    return grid_search(grid, lambda p: table[p["beta"], p["alpha"]], name="streamed"), table


def test_one_hot_cache_product_is_a_per_class_sum_with_the_same_gradient():
    keys, values, f, _, _ = random_cache()
    labels = one_hot_labels(values)
    assert torch.equal(labels, values.argmax(1))
    for soft in (values * 0.5, values[:, 1:], values[:, :0]):  # soft; class 0 remapped away; no class
        assert one_hot_labels(soft) is None
    keys.requires_grad_(True)
    dense = cache_logits(f @ keys.t(), values, 3.7)
    (grad_dense,) = torch.autograd.grad(dense.square().sum(), keys)
    fast = cache_logits(f @ keys.t(), values, 3.7, labels)
    (grad_fast,) = torch.autograd.grad(fast.square().sum(), keys)
    assert torch.allclose(fast, dense, rtol=1e-5, atol=1e-6)
    assert torch.allclose(grad_fast, grad_dense, rtol=1e-4, atol=1e-5)  # Tip-Adapter-F trains through it


@pytest.mark.parametrize("one_hot", [True, False])
def test_streamed_search_chooses_like_the_straightforward_grid(one_hot):
    """Few val rows make many grid points tie at the best accuracy: the first one in grid_search's
    order (beta outer, alpha inner) must win in both; chunks of 3 rows split the val set unevenly."""
    keys, values, f, labels, text = random_cache(num_val=10)
    if not one_hot:  # soft values take the dense product in the stream too
        values = values * torch.rand(values.shape[0], 1, generator=torch.Generator().manual_seed(1))
    zero_shot = 10.0 * f @ text.t()
    grid = {"beta": linspace_grid(0.1, 12, 30), "alpha": linspace_grid(0.1, 10, 20)}
    ref_best, ref_acc = straightforward_search(f, labels, zero_shot, keys, values, grid)
    max_elements = 3 * max(keys.shape[0], 20 * values.shape[1])
    (best, acc), table = streamed_search(f, labels, zero_shot, keys, values, grid, max_elements)
    assert best == ref_best and acc == ref_acc
    assert sum(value == acc for value in table.values()) > 1  # the tie-break was exercised
    assert len(set(table.values())) > 1  # and the grid is not flat


def test_tip_adapter_run_deploys_the_straightforward_choice_and_accuracy(tmp_path):
    """A whole TipAdapter run (streamed search, per-class sum) against the reference search and
    the dense logits on the run's own cache."""
    args = ["--root", "", "--seed", 1, "--trainer", "TipAdapter", "--output-dir", tmp_path / "run",
            "--dataset-config-file", ROOT / "configs/datasets/simulated.yaml",
            "--config-file", ROOT / "configs/trainers/TipAdapter/sim.yaml",
            "DATASET.NUM_SHOTS", 4, "TRAINER.TIPADAPTER.SEARCH_STEP", "(20, 10)"]
    trainer = run_train(args)
    head = trainer.head
    val = trainer.split_features("val")
    f = F.normalize(val.features, dim=-1)
    ref_best, _ = straightforward_search(f, val.labels, head.clip_logits(f), head.keys.detach(), head.values,
                                         trainer.search_grid)
    assert (head.alpha.item(), head.beta.item()) == pytest.approx((ref_best["alpha"], ref_best["beta"]), abs=1e-6)
    test = trainer.split_features("test")
    g = F.normalize(test.features, dim=-1)
    dense = head.clip_logits(g) + ref_best["alpha"] * (torch.exp(-ref_best["beta"] * (1.0 - g @ head.keys.t()))
                                                      @ head.values)
    assert trainer.test() == pytest.approx(batch_accuracy(dense, test.labels), abs=1e-5)  # 1 image = 0.03%


def test_warm_started_c_search_chooses_the_same_c_and_accuracy():
    """CoOp's C search with every fit from zero vs from the nearest fitted C's solution."""
    rng = np.random.default_rng(0)
    means = rng.standard_normal((5, 12))
    y = np.repeat(np.arange(5), 24)
    x = means[y] + 1.5 * rng.standard_normal((len(y), 12))
    x_train, y_train, x_val, y_val = x[::2], y[::2], x[1::2], y[1::2]

    def search(warm):
        fits = {}

        def score(c):
            fits[c] = fit_logistic_regression(x_train, y_train, c, 1000, init=nearest_fit(fits, c) if warm else None)
            return probe_accuracy(fits[c], x_val, y_val)

        chosen, acc = coop_c_search(score, log=lambda line: None)
        return chosen, acc, fits

    cold_c, cold_acc, cold_fits = search(False)
    warm_c, warm_acc, warm_fits = search(True)
    assert (warm_c, warm_acc) == (cold_c, cold_acc)
    iterations = [sum(int(fit.n_iter_[0]) for fit in fits.values()) for fits in (warm_fits, cold_fits)]
    assert iterations[0] < iterations[1]  # the warm starts did change (shorten) the fits
    assert probe_accuracy(warm_fits[warm_c], x_val, y_val) == probe_accuracy(cold_fits[cold_c], x_val, y_val)
