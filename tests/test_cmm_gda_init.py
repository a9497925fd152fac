"""CMM's map initialised from GDA's closed form (TRAINER.CMM.MAP_INIT gda, an ablation): what the
initial map computes, that a run uses it (and trains from it), and that zero stays the default."""
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, run_train
from methods.cmm import CMMHead, gda_map_init
from methods.gda import fit_gda
from trainers.core.config import get_cfg_default


def cmm_args(out, *opts, flags=()):
    return [*flags, "--root", "", "--seed", 1, "--trainer", "CMM",
            "--dataset-config-file", ROOT / "configs/datasets/simulated.yaml",
            "--config-file", ROOT / "configs/trainers/CMM/sim.yaml", "--output-dir", out,
            "DATASET.NUM_SHOTS", 4, *opts]


def toy_problem(num_classes=4, dim=10, per_class=12):
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(num_classes).repeat(per_class)
    centres = torch.randn(num_classes, dim, generator=generator)
    features = centres[labels] + 0.7 * torch.randn(len(labels), dim, generator=generator)
    prototypes = F.normalize(centres + 0.5 * torch.randn(num_classes, dim, generator=generator), dim=-1)
    return features, labels, prototypes


@pytest.mark.parametrize("residual", [True, False])
def test_initial_map_carries_gda_scores_into_the_text_space(residual):
    """Hand-derived: v' T0^T = k (v Wg + (v u) bg) for one k > 0, u the least-squares solution
    of v u = 1 on the training features; the initial CMM logits (no fusion) then rank classes
    as GDA's do (v u ~ 1 here), the part of v outside the prototypes' span is kept, and the
    scores' spread over classes is zero-shot's (means over the training features)."""
    features, labels, prototypes = toy_problem()
    head = CMMHead(prototypes, 100.0, residual=residual, fusion=False)
    head.map.initialise(gda_map_init(features, labels, prototypes, residual=residual))
    v = F.normalize(features, dim=-1)
    with torch.no_grad():
        mapped = head.mapped(features)
        logits = head(features)[0]
    gda_weight, gda_bias = fit_gda(features, labels, 4)
    u = torch.linalg.lstsq(v, torch.ones(len(v), 1)).solution
    carried = v @ gda_weight + (v @ u) * gda_bias
    ratio = (mapped @ prototypes.t()) / carried
    assert ratio.min() > 0 and torch.allclose(ratio, ratio.mean().expand_as(ratio), rtol=1e-3)
    assert torch.equal(logits.argmax(1), (v @ gda_weight + gda_bias).argmax(1))
    span = prototypes.t() @ torch.linalg.pinv(prototypes.t())  # projector onto the prototypes' span
    eye = torch.eye(span.shape[0])
    assert torch.allclose(mapped @ (eye - span), v @ (eye - span), atol=1e-4)
    spread = (mapped @ prototypes.t()).std(dim=1).mean()
    assert spread.item() == pytest.approx((v @ prototypes.t()).std(dim=1).mean().item(), rel=1e-4)


def test_zero_stays_the_default_and_gda_changes_the_initial_map(tmp_path):
    assert get_cfg_default().TRAINER.CMM.MAP_INIT == "zero"

    def initial_map(out, *opts):
        trainer = run_train(cmm_args(tmp_path / out, *opts, flags=["--no-train"]))
        trainer.before_train()  # the training data and the initial map, no epoch yet
        return trainer.head.map.weight.detach().clone(), trainer

    zero, _ = initial_map("zero")
    gda, trainer = initial_map("gda", "TRAINER.CMM.MAP_INIT", "gda")
    assert torch.count_nonzero(zero) == 0
    assert gda.norm() > 0.1
    views = trainer.train_views()
    expected = gda_map_init(views.features.flatten(0, 1), views.labels.repeat(views.features.shape[0]),
                               trainer.zero_shot_prototypes)
    assert torch.allclose(gda, expected.to(gda.device), atol=1e-6)
    with pytest.raises(ValueError, match="TRAINER.CMM.MAP_INIT"):
        run_train(cmm_args(tmp_path / "bad", "TRAINER.CMM.MAP_INIT", "lda"))


def test_gda_initialised_run_trains_and_beats_zero_shot(tmp_path):
    trainer = run_train(cmm_args(tmp_path / "run", "TRAINER.CMM.MAP_INIT", "gda", "OPTIM.MAX_EPOCH", 5))
    zero_shot = run_train(["--eval-only", "--root", "", "--seed", 1, "--trainer", "ZeroshotCLIP",
                           "--dataset-config-file", ROOT / "configs/datasets/simulated.yaml",
                           "--output-dir", tmp_path / "zs", "DATASET.NUM_SHOTS", 4])
    views = trainer.train_views()
    initial = gda_map_init(views.features.flatten(0, 1), views.labels.repeat(views.features.shape[0]),
                              trainer.zero_shot_prototypes)
    assert not torch.allclose(trainer.head.map.weight.detach(), initial.to(trainer.device), atol=1e-4)  # it trained
    assert trainer.test() > zero_shot.test() + 10.0
