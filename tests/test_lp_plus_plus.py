"""LPPlusPlus: the official initialisation, step sizes and updates against numpy, the strict
protocol reading no val and no test, full_val choosing the epoch on the full val split only,
gains over zero-shot, and eval-only reloading (also on a subset of the classes)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import RESULT_BLOCK, ROOT, coop_parse, poison_splits, read_log, run_train, split_reads, tiny_args
from methods.lp_plus_plus import LPPlusPlusHead, fit_lp_plus_plus, train_step, visual_optimizer
from test_linear_probe import check_eval_only_runs, forwarded_commands
from trainers.core.config import get_cfg_default, merge_file

SHOTS = 4
FAST = ("TRAINER.LPPLUSPLUS.EPOCHS", 20)


@pytest.fixture(autouse=True)
def one_thread():
    """Full-batch steps on 512 x 128 features: one intra-op thread is several times faster than two
    on a shared CPU (the numbers do not depend on it beyond rounding)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sim_args(out, shots=SHOTS, *opts, trainer="LPPlusPlus", dataset="simulated", flags=(), seed=1):
    args = [*flags, "--root", "", "--seed", seed, "--trainer", trainer,
            "--dataset-config-file", ROOT / f"configs/datasets/{dataset}.yaml", "--output-dir", out]
    if trainer != "ZeroshotCLIP":
        args += ["--config-file", ROOT / f"configs/trainers/{trainer}/sim.yaml"]
    return args + ["DATASET.NUM_SHOTS", shots, *opts]


def small_problem(seed=0, shots=4, num_classes=3, dim=6):
    """Normalised features and text prototypes, float64, as numpy arrays."""
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(num_classes, dim))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    labels = np.repeat(np.arange(num_classes), shots)
    features = text[labels] + 0.8 * rng.normal(size=(len(labels), dim))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return features, labels, text


def torch_head(features, labels, text):
    head = LPPlusPlusHead(torch.from_numpy(text))
    head.initialise(torch.from_numpy(features), torch.from_numpy(labels), torch.Generator().manual_seed(0))
    return head


def test_initialisation_and_step_sizes_follow_the_official_formulas():
    """Reference: linear_probe_p2.py / methods/utils.py of FereshteShakeri/FewShot-CLIP-Strong-Baseline,
    written out in numpy the way the official code computes them."""
    shots = 4
    f, y, t = small_problem(shots=shots)
    n, c = len(y), len(t)
    one_hot = np.eye(c)[y]  # [N, C]
    centroids = one_hot.T @ f  # compute_centroids: class SUMS (the division is commented out)
    z = f @ t.T
    alpha_tilde = (one_hot * z / one_hot.sum(0, keepdims=True)).sum(0)  # compute_centroids_alpha
    alpha_init = np.mean(250 / shots * (alpha_tilde * shots))
    lr_w = 4 * n / np.linalg.eigh(f.T @ f)[0].max()
    lr_alpha = n / (np.max(np.sum(z ** 2, axis=0)) * 4)

    head = torch_head(f, y, t)
    assert np.allclose(head.weight.detach().numpy(), centroids)
    assert np.allclose(head.alpha.detach().numpy(), alpha_init) and alpha_init > 0
    assert head.lr_visual.item() == pytest.approx(lr_w, rel=1e-10)
    assert head.lr_alpha.item() == pytest.approx(lr_alpha, rel=1e-10)
    bound = 1 / math.sqrt(f.shape[1])
    assert head.bias.abs().max() <= bound and head.bias.std() > 0  # nn.Linear's default bias draw
    expected = f @ centroids.T + head.bias.detach().numpy() + alpha_init * z
    assert np.allclose(head(torch.from_numpy(f)).detach().numpy(), expected)


def numpy_lp_plus_plus(f, y, t, w, b, alpha, lr_w, lr_alpha, epochs, accumulate, every=10, momentum=0.9):
    """The official loop with hand-written gradients of the mean cross-entropy:
    G = (softmax(logits) - onehot) / N; dW = G^T F; db = sum_i G; dalpha_c = sum_i G_ic (f_i . t_c);
    torch's SGD momentum (v = mu v + g, p -= lr v); alpha -= lr_alpha * (sum of all alpha grads so far,
    or the current one) after the (epoch + 1) % every == 0 steps of W, b."""
    n, c = len(y), len(t)
    one_hot, z = np.eye(c)[y], f @ t.T
    vw, vb, alpha_grad = np.zeros_like(w), np.zeros_like(b), np.zeros_like(alpha)
    for epoch in range(epochs):
        logits = f @ w.T + b + alpha * z
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - one_hot) / n
        grad_w, grad_b, grad_alpha = g.T @ f, g.sum(0), (g * z).sum(0)
        alpha_grad = alpha_grad + grad_alpha if accumulate else grad_alpha
        vw = momentum * vw + grad_w if epoch else grad_w
        vb = momentum * vb + grad_b if epoch else grad_b
        w, b = w - lr_w * vw, b - lr_w * vb
        if (epoch + 1) % every == 0:
            alpha = alpha - lr_alpha * alpha_grad
    return w, b, alpha


@pytest.mark.parametrize("mode", ["accumulated", "current"])
def test_updates_match_a_numpy_gradient_descent(mode):
    f, y, t = small_problem(seed=1)
    head = torch_head(f, y, t)
    start = [p.detach().numpy().copy() for p in (head.weight, head.bias, head.alpha)]
    expected = numpy_lp_plus_plus(f, y, t, *start, head.lr_visual.item(), head.lr_alpha.item(), epochs=25,
                                  accumulate=mode == "accumulated")
    optimizer = visual_optimizer(head)
    features, labels = torch.from_numpy(f), torch.from_numpy(y)
    for epoch in range(25):
        train_step(head, optimizer, features, labels, epoch, mode)
    for got, want in zip((head.weight, head.bias, head.alpha), expected):
        assert np.allclose(got.detach().numpy(), want, rtol=1e-9, atol=1e-9)
    assert not np.allclose(expected[2], start[2])  # alpha moved (twice)
    other = numpy_lp_plus_plus(f, y, t, *start, head.lr_visual.item(), head.lr_alpha.item(), epochs=25,
                               accumulate=mode != "accumulated")
    assert not np.allclose(other[2], expected[2])  # the two modes differ: the test tells them apart


def test_fit_function_normalises_features_and_lowers_the_loss():
    f, y, t = small_problem(seed=2, shots=8)
    labels, text = torch.from_numpy(y), torch.from_numpy(t)
    scaled = torch.from_numpy(f * np.linspace(1, 5, len(y))[:, None])
    head = fit_lp_plus_plus(scaled, labels, text, epochs=50, generator=torch.Generator().manual_seed(0))
    same = fit_lp_plus_plus(torch.from_numpy(f), labels, text, epochs=50, generator=torch.Generator().manual_seed(0))
    for key, value in head.state_dict().items():  # the norms of the inputs do not matter
        assert torch.allclose(value, same.state_dict()[key], atol=1e-10), key
    start = torch_head(f, y, t)
    with torch.no_grad():
        loss_start = F.cross_entropy(start(torch.from_numpy(f)), labels).item()
        loss_end = F.cross_entropy(head(torch.from_numpy(f)), labels).item()
    assert loss_end < 0.5 * loss_start
    with pytest.raises(ValueError, match="alpha_grad"):
        train_step(head, visual_optimizer(head), scaled, labels, 0, "sum")


# --- protocols ----------------------------------------------------------------------------------------
def trained_on(out, protocol, noisy=(), *opts):
    """The trained head and the splits a run read, with the ``noisy`` splits' features replaced by
    noise and random labels before training."""
    extra = ("TEST.FINAL_MODEL", "best_val", "TRAINER.LPPLUSPLUS.EPOCHS", 10) if protocol == "full_val" else FAST
    trainer = run_train(sim_args(out, SHOTS, "TRAINER.LPPLUSPLUS.PROTOCOL", protocol, *extra, *opts,
                                 flags=["--no-train"]))
    poison_splits(trainer, noisy)
    asked = split_reads(trainer)
    trainer.train()
    return trainer, set(asked)


def test_strict_reads_neither_val_nor_test(tmp_path):
    clean, _ = trained_on(tmp_path / "clean", "strict", (), "TEST.NO_TEST", "True")
    dirty, asked = trained_on(tmp_path / "dirty", "strict", ("val", "full_val", "test"), "TEST.NO_TEST", "True")
    assert not {"val", "full_val", "test"} & asked
    for key, value in clean.head.state_dict().items():
        assert torch.equal(value, dirty.head.state_dict()[key]), key
    assert clean.selection_protocol() == {"protocol": "strict", "selected": {}}
    features, labels, _ = clean.train_loader_x[0]
    assert features.shape == (32 * SHOTS, 128) and torch.allclose(features.norm(dim=1), torch.ones(len(labels)))


def test_full_val_chooses_the_epoch_on_the_full_val_split_only(tmp_path):
    full, asked = trained_on(tmp_path / "f", "full_val")
    assert "full_val" in asked and "val" not in asked
    assert full.selection_protocol() == {"protocol": "full_val", "selected": {"epoch": "full_val"}}
    best = torch.load(tmp_path / "f/lp_plus_plus/model-best.pth.tar", weights_only=True)
    assert 1 <= best["epoch"] <= 10
    # noise in the few-shot val split changes nothing; noise in the full val split changes the choice
    noisy_val, _ = trained_on(tmp_path / "nv", "full_val", ("val",))
    noisy_full, _ = trained_on(tmp_path / "nf", "full_val", ("full_val",))
    best_nv = torch.load(tmp_path / "nv/lp_plus_plus/model-best.pth.tar", weights_only=True)
    best_nf = torch.load(tmp_path / "nf/lp_plus_plus/model-best.pth.tar", weights_only=True)
    assert best_nv["val_result"] == best["val_result"] and best_nv["epoch"] == best["epoch"]
    assert best_nf["val_result"] != best["val_result"]
    strict_best, asked = trained_on(tmp_path / "s", "strict", (), "TEST.FINAL_MODEL", "best_val", "TEST.NO_TEST",
                                    "False")
    assert "val" in asked and "full_val" not in asked
    assert strict_best.selection_protocol() == {"protocol": "strict", "selected": {"epoch": "fewshot_val"}}
    with pytest.raises(ValueError, match="TEST.FINAL_MODEL best_val"):
        run_train(sim_args(tmp_path / "bad", SHOTS, "TRAINER.LPPLUSPLUS.PROTOCOL", "full_val"))
    with pytest.raises(ValueError, match="TRAINER.LPPLUSPLUS.PROTOCOL"):
        run_train(sim_args(tmp_path / "bad2", SHOTS, "TRAINER.LPPLUSPLUS.PROTOCOL", "test"))


# --- science and checkpoints ----------------------------------------------------------------------------
def test_beats_zero_shot_at_16_shots(tmp_path):
    """Observed (seed 1): zero-shot 53.4, LP++ 85.4 (300 epochs, published settings)."""
    zero_shot = run_train(sim_args(tmp_path / "zs", 16, trainer="ZeroshotCLIP", flags=["--eval-only"])).test()
    lpp = run_train(sim_args(tmp_path / "lpp", 16)).test()
    assert lpp > zero_shot + 20.0


def test_eval_only_reload_shift_and_class_subset(tmp_path):
    run = check_eval_only_runs(tmp_path, "LPPlusPlus", *FAST)
    assert (run / "lp_plus_plus").is_dir()

def test_image_dataset_run_with_the_tiny_clip(tiny_clip, dtd_root, tmp_path):
    out = tmp_path / "dtd" / "LPPlusPlus" / "seed1"
    trainer = run_train(tiny_args(tiny_clip, dtd_root, out, "DATASET.NUM_SHOTS", "2", *FAST, trainer="LPPlusPlus"))
    log = read_log(out)
    assert len(RESULT_BLOCK.findall(log)) == 1 and coop_parse(log) == pytest.approx(trainer.test(), abs=0.05)
    assert "LP++: 8 training features (1 view(s))" in log and "(custom): ['{} texture.']" in log
    assert trainer.head.weight.shape == (4, 32) and (out / "lp_plus_plus" / "model.pth.tar-20").is_file()


def test_configs():
    for backbone in ("rn50", "rn101", "vit_b32", "vit_b16"):
        plain, full = get_cfg_default(), get_cfg_default()
        merge_file(plain, ROOT / f"configs/trainers/LPPlusPlus/{backbone}.yaml")
        merge_file(full, ROOT / f"configs/trainers/LPPlusPlus/{backbone}_full_val.yaml")
        assert plain.TRAINER.LPPLUSPLUS.PROTOCOL == "strict" and plain.TEST.FINAL_MODEL == "last_step"
        assert full.TRAINER.LPPLUSPLUS.PROTOCOL == "full_val" and full.TEST.FINAL_MODEL == "best_val"
        assert plain.MODEL.BACKBONE.NAME == full.MODEL.BACKBONE.NAME
        assert plain.TRAINER.LPPLUSPLUS.EPOCHS == 300 and plain.TRAINER.LPPLUSPLUS.AUG_VIEWS == 1


def test_scripts_forward_to_the_runners(tmp_path):
    forwarded_commands(tmp_path, "lp_plus_plus", "LPPlusPlus")
