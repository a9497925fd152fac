"""GDA: the official formula (against a numpy re-derivation), the alpha search of the original
code, never reading test, the gain over zero-shot, reloading (also on other classes and on the
shifted set), and the selection protocols (strict: few-shot val; full_val: the whole val split)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, poison_splits, read_log, run_train, split_reads, tiny_args
from methods.gda import fit_gda
from test_linear_probe import check_eval_only_runs, forwarded_commands
from trainers.core.config import get_cfg_default, merge_file

SHOTS = 4
ORIGINAL_GRID = [0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0]


def sim_args(out, trainer, shots=SHOTS, *opts, dataset="simulated", flags=()):
    args = [*flags, "--root", "", "--seed", 1, "--trainer", trainer,
            "--dataset-config-file", ROOT / f"configs/datasets/{dataset}.yaml", "--output-dir", out]
    if trainer != "ZeroshotCLIP":
        args += ["--config-file", ROOT / f"configs/trainers/{trainer}/sim.yaml"]
    return args + ["DATASET.NUM_SHOTS", shots, *opts]


def numpy_gda(x, y, num_classes):
    """Reference (mrflogs/ICLR24 main_few_shots.py, written in scatter-matrix form with numpy):
    rows L2-normalised; S = sum_i (x_i - mu_yi)(x_i - mu_yi)^T, so that (n - 1) * Cov = S and
    tr(Cov) = tr(S) / (n - 1); P = d * pinv(S + tr(S) / (n - 1) * I); W = P mu^T;
    b = log(1 / C) - diag(mu P mu^T) / 2."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n, d = x.shape
    mu = np.stack([x[y == c].mean(axis=0) for c in range(num_classes)])
    r = x - mu[y]
    scatter = r.T @ r
    precision = d * np.linalg.pinv(scatter + np.trace(scatter) / (n - 1) * np.eye(d))
    bias = np.log(1.0 / num_classes) - 0.5 * np.einsum("cd,de,ce->c", mu, precision, mu)
    return precision @ mu.T, bias, mu, precision


def original_alpha(zero_shot, gda, labels):
    """The original's loop: best_alpha starts at 0.1 with accuracy 0; a later alpha wins only
    when strictly better."""
    best_acc, best_alpha = 0.0, 0.1
    for alpha in ORIGINAL_GRID:
        acc = (np.argmax(zero_shot + alpha * gda, axis=1) == labels).mean() * 100
        if acc > best_acc:
            best_acc, best_alpha = acc, alpha
    return best_alpha


def test_fit_gda_matches_the_numpy_reference_and_is_gaussian_discriminant_analysis():
    generator = torch.Generator().manual_seed(0)
    num_classes, dim = 3, 6
    labels = torch.arange(num_classes).repeat(9)
    features = torch.randn(len(labels), dim, generator=generator) * 0.5 + 3 * torch.randn(
        num_classes, dim, generator=generator)[labels]
    weight, bias = fit_gda(features, labels, num_classes)
    w_ref, b_ref, mu, precision = numpy_gda(features.double().numpy(), labels.numpy(), num_classes)
    assert np.allclose(weight.numpy(), w_ref, rtol=1e-5, atol=1e-5)
    assert np.allclose(bias.numpy(), b_ref, rtol=1e-5, atol=1e-5)
    # the linear logits differ from the Gaussian log-densities -(x - mu_c) P (x - mu_c)^T / 2 by a
    # term that is the same for every class (-x P x^T / 2): the same posterior under uniform priors
    x = F.normalize(features.double(), dim=-1).numpy()
    linear = x @ weight.double().numpy() + bias.double().numpy()
    diff = x[:, None, :] - mu[None]
    log_density = -0.5 * np.einsum("ncd,de,nce->nc", diff, precision, diff)
    offset = linear - log_density
    assert np.allclose(offset, offset[:, :1], atol=1e-4)
    with pytest.raises(ValueError, match="at least one training feature"):
        fit_gda(features[:4], torch.tensor([0, 0, 1, 1]), num_classes)


def test_trainer_follows_the_original_code_and_beats_zero_shot(tmp_path):
    """Estimated from the 10 cached views (each normalised, each one sample); alpha by the
    original's loop on the few-shot val split; the test logits as the original computes them.
    Observed at 16 shots, seed 1: zero-shot 53.4, GDA 85.9."""
    trainer = run_train(sim_args(tmp_path / "run", "GDA", 16))
    views = trainer.augmented_train_features(10, scale=(0.5, 1.0))
    x = views.features.flatten(0, 1).double().numpy()
    y = views.labels.repeat(10).numpy()
    w, b, _, _ = numpy_gda(x, y, trainer.num_classes)
    text = trainer.class_text_features(["a photo of a {}."])[:, 0].double()
    text = F.normalize(text, dim=-1).numpy()

    def parts(split):
        data = trainer.split_features(split)
        f = F.normalize(data.features.double(), dim=-1).numpy()
        return 100.0 * f @ text.T, f @ w + b, data.labels.numpy()

    alpha = original_alpha(*parts("val"))
    assert trainer.head.alpha.item() == pytest.approx(alpha)
    zero_shot, gda, labels = parts("test")
    expected = zero_shot + alpha * gda
    with torch.no_grad():
        logits = trainer.model_inference(trainer.split_features("test").features).double().numpy()
    assert np.allclose(logits, expected, atol=1e-3 * max(1.0, alpha))
    accuracy = trainer.test()
    assert accuracy == pytest.approx((expected.argmax(1) == labels).mean() * 100)
    assert accuracy > (zero_shot.argmax(1) == labels).mean() * 100 + 20.0


def test_clip_features_dataset_template_and_per_view_normalisation(tmp_path, tiny_clip, dtd_root):
    """The CLIP path (tiny random model, DTD copy): the dataset's CoOp template, and W / b from
    the raw cached views, whose norms differ (each view is normalised before estimating)."""
    trainer = run_train(tiny_args(tiny_clip, dtd_root, tmp_path / "run", "DATASET.NUM_SHOTS", 2, trainer="GDA"))
    log = read_log(tmp_path / "run")
    assert "'{} texture.'" in log and "GDA alpha search on the few-shot val split" in log and "* accuracy:" in log
    views = trainer.augmented_train_features(10, scale=(0.5, 1.0))
    assert views.features.norm(dim=-1).std() > 0.01
    w, b, _, _ = numpy_gda(views.features.flatten(0, 1).double().numpy(), views.labels.repeat(10).numpy(),
                           trainer.num_classes)
    assert np.allclose(trainer.head.weight.double().numpy(), w, rtol=1e-4, atol=1e-3 * np.abs(w).max())
    assert np.allclose(trainer.head.bias.double().numpy(), b, rtol=1e-4, atol=1e-3 * np.abs(b).max())


def searched_on(out, protocol, noisy=(), *opts):
    """The alpha a run chooses and the splits it read, with the features of the ``noisy`` splits
    replaced by noise and random labels before the search."""
    trainer = run_train(sim_args(out, "GDA", SHOTS, "TRAINER.GDA.PROTOCOL", protocol, "TEST.NO_TEST", "True",
                                 *opts, flags=["--no-train"]))
    poison_splits(trainer, noisy)
    asked = split_reads(trainer)
    trainer.train()
    return trainer.head.alpha.item(), set(asked), trainer


def test_protocols_read_only_their_split_and_never_test(tmp_path):
    """strict reads the few-shot val split only, full_val the whole val split only: noise in the
    splits a protocol does not read (NaN test features) leaves alpha and W unchanged, noise in the
    one it reads changes alpha; one grid value reads no val split."""
    strict, strict_asked, clean = searched_on(tmp_path / "s", "strict")
    full, full_asked, _ = searched_on(tmp_path / "f", "full_val")
    assert "val" in strict_asked and not {"full_val", "test"} & strict_asked
    assert "full_val" in full_asked and not {"val", "test"} & full_asked
    noisy_strict, _, dirty = searched_on(tmp_path / "s_noisy", "strict", ("full_val", "test"))
    assert noisy_strict == strict and torch.equal(dirty.head.weight, clean.head.weight)
    assert searched_on(tmp_path / "f_noisy", "full_val", ("val", "test"))[0] == full
    assert searched_on(tmp_path / "f_noisy_full", "full_val", ("full_val",))[0] != full
    fixed, fixed_asked, fixed_trainer = searched_on(tmp_path / "one", "strict", (), "TRAINER.GDA.ALPHA_GRID", "[2.5]")
    assert fixed == 2.5 and not {"val", "full_val", "test"} & fixed_asked
    assert clean.selection_protocol() == {"protocol": "strict", "selected": {"alpha": "fewshot_val"}}
    assert fixed_trainer.selection_protocol() == {"protocol": "strict", "selected": {}}
    with pytest.raises(ValueError, match="TRAINER.GDA.PROTOCOL"):
        run_train(sim_args(tmp_path / "bad", "GDA", SHOTS, "TRAINER.GDA.PROTOCOL", "test"))
    with pytest.raises(ValueError, match="TRAINER.GDA.ALPHA_GRID"):
        run_train(sim_args(tmp_path / "bad_grid", "GDA", SHOTS, "TRAINER.GDA.ALPHA_GRID", "[-1.0]"))


def test_eval_only_reload_shift_and_class_subset(tmp_path):
    run = check_eval_only_runs(tmp_path, "GDA")
    assert (run / "gda").is_dir()

def test_protocol_configs():
    for backbone in ("rn50", "rn101", "vit_b32", "vit_b16"):
        plain, protocol = get_cfg_default(), get_cfg_default()
        merge_file(plain, ROOT / f"configs/trainers/GDA/{backbone}.yaml")
        merge_file(protocol, ROOT / f"configs/trainers/GDA/{backbone}_full_val.yaml")
        assert protocol.TRAINER.GDA.PROTOCOL == "full_val" and plain.TRAINER.GDA.PROTOCOL == "strict"
        assert plain.TRAINER.GDA.ALPHA_GRID == ORIGINAL_GRID and plain.TRAINER.GDA.AUGMENT_EPOCH == 10
        protocol.TRAINER.GDA.PROTOCOL = "strict"
        assert protocol == plain  # nothing else differs


def test_scripts_forward_to_the_runners(tmp_path):
    forwarded_commands(tmp_path, "gda", "GDA")
